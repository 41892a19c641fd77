/**
 * A small multi-dtype file written by Python's safetensors 0.8.0 (numpy API), kept as hex, to pin
 * the writer's tensor order (dtype rank, then UTF-8 byte order of names: "\uff00" before an
 * emoji), JSON escaping and padding. Made with:
 *
 *   t = {"b.w": arange(6, f32).reshape(2,3), "a.w": [1,2] f16, "z": 7 i64 (0-d),
 *        "m": [True,False,True] bool, "u8": zeros((0,4), u8), "i8": [-1,2] i8, "d": [0.5] f64,
 *        "i32": [[1],[2]] i32, "u16": [65535] u16, "ü": [3] i16, "😀": [3] i16, "\uff00": [4] i16,
 *        'q"\\\n\x01': [1.0] f32, "u64": [1] u64, "u32": [1] u32}
 *   safetensors.numpy.save(t, metadata={"format": "np", "note": 'x"y\né\x7f/'})
 */
import { describe, expect, it } from 'vitest';
import { parseSafetensorsHeader } from '../../src/tensors/safetensors.js';
import { planSafetensorsLayout, serializeSafetensors } from '../../src/tensors/safetensors-writer.js';
import type { TensorWithData } from '../../src/tensors/safetensors-writer.js';

const PYTHON_FILE_HEX =
  '90030000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a226e70222c226e6f7465223a22785c22' +
  '795c6ec3a97f2f227d2c22753634223a7b226474797065223a22553634222c227368617065223a5b315d2c22646174615f6f' +
  '666673657473223a5b302c385d7d2c227a223a7b226474797065223a22493634222c227368617065223a5b5d2c2264617461' +
  '5f6f666673657473223a5b382c31365d7d2c2264223a7b226474797065223a22463634222c227368617065223a5b315d2c22' +
  '646174615f6f666673657473223a5b31362c32345d7d2c22622e77223a7b226474797065223a22463332222c227368617065' +
  '223a5b322c335d2c22646174615f6f666673657473223a5b32342c34385d7d2c22715c225c5c5c6e5c7530303031223a7b22' +
  '6474797065223a22463332222c227368617065223a5b315d2c22646174615f6f666673657473223a5b34382c35325d7d2c22' +
  '753332223a7b226474797065223a22553332222c227368617065223a5b315d2c22646174615f6f666673657473223a5b3532' +
  '2c35365d7d2c22693332223a7b226474797065223a22493332222c227368617065223a5b322c315d2c22646174615f6f6666' +
  '73657473223a5b35362c36345d7d2c22612e77223a7b226474797065223a22463136222c227368617065223a5b325d2c2264' +
  '6174615f6f666673657473223a5b36342c36385d7d2c22753136223a7b226474797065223a22553136222c22736861706522' +
  '3a5b315d2c22646174615f6f666673657473223a5b36382c37305d7d2c22c3bc223a7b226474797065223a22493136222c22' +
  '7368617065223a5b315d2c22646174615f6f666673657473223a5b37302c37325d7d2c22efbc80223a7b226474797065223a' +
  '22493136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b37322c37345d7d2c22f09f9880223a7b' +
  '226474797065223a22493136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b37342c37365d7d2c' +
  '226938223a7b226474797065223a224938222c227368617065223a5b325d2c22646174615f6f666673657473223a5b37362c' +
  '37385d7d2c227538223a7b226474797065223a225538222c227368617065223a5b302c345d2c22646174615f6f6666736574' +
  '73223a5b37382c37385d7d2c226d223a7b226474797065223a22424f4f4c222c227368617065223a5b335d2c22646174615f' +
  '6f666673657473223a5b37382c38315d7d7d202001000000000000000700000000000000000000000000e03f000000000000' +
  '803f0000004000004040000080400000a0400000803f010000000100000002000000003c0040ffff030004000300ff020100' +
  '01';
const bytes = Uint8Array.from(Buffer.from(PYTHON_FILE_HEX, 'hex'));

describe('a file written by Python safetensors', () => {
  const header = parseSafetensorsHeader(bytes, bytes.byteLength, 'python.safetensors');

  it('parses with the expected tensors, in the library’s order', () => {
    expect(bytes.byteLength).toBe(1001);
    expect(header.metadata).toEqual({ format: 'np', note: 'x"y\né\x7f/' });
    expect([...header.tensors.keys()]).toEqual([
      'u64', 'z', 'd', 'b.w', 'q"\\\n\x01', 'u32', 'i32', 'a.w', 'u16', 'ü', '\uff00', '😀', 'i8', 'u8', 'm',
    ]);
    expect(header.tensors.get('z')).toMatchObject({ dtype: 'I64', shape: [], byteLength: 8 });
    expect(header.tensors.get('u8')).toMatchObject({ dtype: 'U8', shape: [0, 4], byteLength: 0 });
    const bw = header.tensors.get('b.w');
    expect(bw).toBeDefined();
    if (bw !== undefined) {
      const data = bytes.slice(bw.byteOffset, bw.byteOffset + bw.byteLength);
      expect([...new Float32Array(data.buffer)]).toEqual([0, 1, 2, 3, 4, 5]);
    }
  });

  it('re-planning the same tensors and metadata gives the same bytes', () => {
    const tensors: TensorWithData[] = [...header.tensors.values()]
      .map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: bytes.slice(t.byteOffset, t.byteOffset + t.byteLength) }))
      .sort((a, b) => (a.name < b.name ? 1 : -1)); // any input order
    const layout = planSafetensorsLayout(tensors, header.metadata);
    expect(Buffer.from(layout.headerBytes).equals(Buffer.from(bytes.subarray(0, header.dataOffset)))).toBe(true);
    expect(Buffer.from(serializeSafetensors(tensors, header.metadata)).equals(Buffer.from(bytes))).toBe(true);
  });
});
