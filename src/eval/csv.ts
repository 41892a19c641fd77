import { EvoError } from '../errors.js';

/**
 * RFC 4180 CSV: comma-separated fields, fields in double quotes may hold commas, newlines and
 * doubled quotes (""), records end with CRLF or LF. The last record may lack a line end.
 * Like Python's csv module and pandas (which read the MMLU files for the paper), a quote inside
 * an unquoted field is an ordinary character, and text after a closing quote joins the field:
 * MMLU's released CSVs contain both (e.g. college_medicine_val.csv row 6).
 */

export class CsvError extends EvoError {
  constructor(file: string, line: number, message: string) {
    super('BAD_CSV', `${file}:${line}: ${message}`);
    this.name = 'CsvError';
  }
}

/** Parses CSV text into records of string fields (no header handling). */
export function parseCsv(text: string, file: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let fieldStarted = false;
  let line = 1;
  let recordLine = 1;
  const endField = (): void => {
    record.push(field);
    field = '';
    fieldStarted = false;
  };
  const endRecord = (): void => {
    endField();
    records.push(record);
    record = [];
  };
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && !fieldStarted) {
      quoted = true;
      fieldStarted = true;
    } else if (c === ',') {
      endField();
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      // Blank lines are not records.
      if (record.length > 0 || fieldStarted) endRecord();
      line++;
      recordLine = line;
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw new CsvError(file, recordLine, 'a quoted field is not closed before the end of the file');
  if (fieldStarted || field !== '' || record.length > 0) endRecord();
  return records;
}
