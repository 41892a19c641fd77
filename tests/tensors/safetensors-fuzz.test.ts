/**
 * Whatever bytes the parser is given, it returns a consistent header or throws SafetensorsError:
 * never another exception, never a hang, never an allocation sized by an unchecked length.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DTYPES, dtypeByteSize } from '../../src/tensors/dtype.js';
import type { DType } from '../../src/tensors/dtype.js';
import { SafetensorsError, parseSafetensorsHeader } from '../../src/tensors/safetensors.js';
import type { SafetensorsHeader } from '../../src/tensors/safetensors.js';
import { serializeSafetensors } from '../../src/tensors/safetensors-writer.js';

/** Parses, and checks the invariants of whatever is accepted. Returns 'ok' or the error code. */
function parseOrCode(bytes: Uint8Array): string {
  let h: SafetensorsHeader;
  try {
    h = parseSafetensorsHeader(bytes, bytes.byteLength, 'fuzz.safetensors');
  } catch (err) {
    if (err instanceof SafetensorsError) return err.code;
    throw err;
  }
  expect(h.dataOffset).toBe(8 + h.headerLength);
  let position = h.dataOffset;
  for (const t of h.tensors.values()) {
    expect(t.byteOffset).toBe(position);
    expect(t.byteLength).toBe(t.shape.reduce((a, b) => a * b, 1) * dtypeByteSize(t.dtype));
    position += t.byteLength;
  }
  expect(position).toBe(bytes.byteLength);
  return 'ok';
}

function withLength(header: Uint8Array, dataBytes: number, length?: bigint): Uint8Array {
  const out = new Uint8Array(8 + header.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(header.byteLength), true);
  out.set(header, 8);
  return out;
}

const dtypeArb = fc.constantFrom<DType>(...DTYPES);
const tensorsArb = fc.uniqueArray(
  fc.record({
    name: fc.string({ minLength: 0, maxLength: 6 }),
    dtype: dtypeArb,
    shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
  }),
  { selector: (t) => t.name, maxLength: 5 },
);
const validFileArb = tensorsArb
  .filter((ts) => ts.every((t) => !/\p{Cs}/u.test(t.name) && t.name !== '__metadata__'))
  .map((ts) =>
    serializeSafetensors(
      ts.map((t) => ({
        ...t,
        data: new Uint8Array(t.shape.reduce((a, b) => a * b, 1) * dtypeByteSize(t.dtype)).fill(0xab),
      })),
      { format: 'pt' },
    ),
  );

describe('safetensors parser fuzzing', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        parseOrCode(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes behind a plausible length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(40), (body, extra) => {
        parseOrCode(withLength(body, extra));
      }),
      { numRuns: 2000 },
    );
  });

  it('random JSON headers', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 4 }), fc.nat(64), (text, extra) => {
        parseOrCode(withLength(new TextEncoder().encode(text), extra));
      }),
      { numRuns: 2000 },
    );
  });

  it('structured near-valid headers (dtype, shape and offsets perturbed)', () => {
    const value = fc.oneof(
      fc.nat(40),
      fc.constantFrom(-1, 1.5, 2 ** 53, 2 ** 64, Number.MAX_SAFE_INTEGER, '3', null, true, [], {}),
    );
    const entryArb = fc.record(
      {
        dtype: fc.oneof(dtypeArb, fc.constantFrom('F4', 'bf16', '', 7, null)),
        shape: fc.oneof(fc.array(value, { maxLength: 4 }), value),
        data_offsets: fc.oneof(fc.tuple(value, value), fc.array(value, { maxLength: 3 }), value),
      },
      { requiredKeys: [] },
    );
    const headerArb = fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constant('__metadata__')), fc.oneof(entryArb, value), {
      maxKeys: 5,
    });
    fc.assert(
      fc.property(headerArb, fc.nat(200), (header, extra) => {
        parseOrCode(withLength(new TextEncoder().encode(JSON.stringify(header)), extra));
      }),
      { numRuns: 3000 },
    );
  });

  it('byte mutations of valid files', () => {
    fc.assert(
      fc.property(
        validFileArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.nat(20)),
        (file, mutations, cut) => {
          const bytes = file.slice(0, cut === null ? file.byteLength : Math.max(0, file.byteLength - cut));
          for (const [pos, value] of mutations) if (bytes.byteLength > 0) bytes[pos % bytes.byteLength] = value;
          parseOrCode(bytes);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('every single-byte substitution of a small valid file', () => {
    const file = serializeSafetensors(
      [
        { name: 'w', dtype: 'BF16', shape: [2, 3], data: new Uint8Array(12).fill(1) },
        { name: 'b', dtype: 'F32', shape: [3], data: new Uint8Array(12).fill(2) },
        { name: 's', dtype: 'I64', shape: [], data: new Uint8Array(8).fill(3) },
      ],
      { format: 'pt' },
    );
    const replacements = [0x00, 0x01, 0x20, 0x22, 0x2c, 0x2d, 0x2e, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0x80, 0xff];
    const seen = new Map<string, number>();
    for (let pos = 0; pos < file.byteLength; pos++) {
      for (const r of replacements) {
        if (file[pos] === r) continue;
        const bytes = file.slice();
        bytes[pos] = r;
        const code = parseOrCode(bytes);
        seen.set(code, (seen.get(code) ?? 0) + 1);
      }
    }
    // The mutations reach most of the validation paths, not just one early check.
    const reached = ['ok', 'HEADER_TOO_LARGE', 'HEADER_BEYOND_FILE', 'HEADER_NOT_UTF8', 'HEADER_NOT_JSON', 'BAD_ENTRY'] as const;
    for (const code of [...reached, 'UNKNOWN_DTYPE', 'BAD_SHAPE', 'BAD_OFFSETS', 'SIZE_MISMATCH']) {
      expect(seen.get(code) ?? 0, code).toBeGreaterThan(0);
    }
  });

  it('a huge announced header in a small buffer is rejected from the length alone', () => {
    for (const length of [100_000_000n, 99_999_999n, 2n ** 53n, 2n ** 64n - 1n]) {
      const code = parseOrCode(withLength(new Uint8Array(16), 0, length));
      expect(['HEADER_TOO_LARGE', 'HEADER_BEYOND_FILE']).toContain(code);
    }
  });
});
