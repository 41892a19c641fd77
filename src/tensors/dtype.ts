/** Element types of the safetensors format, spelled as in its header. */
export type DType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/** The floating-point dtypes the merge engine computes in (mergekit's `dtype:` values). */
export type FloatDType = 'F32' | 'F16' | 'BF16';
