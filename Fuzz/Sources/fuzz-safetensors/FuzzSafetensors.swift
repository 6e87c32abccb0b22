import Formats
import FuzzSupport
import Quantization
import TensorGraph

/// safetensors: parse and validate the header, build the graph, read every tensor's bytes and
/// decode the float types to f32.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let data = input ?? UnsafePointer(bitPattern: 1)!
    let path = FuzzInput.write(data, size, name: "input.safetensors")
    do {
        let graph = try SafetensorsGraph.read(path)
        for t in graph.tensors {
            let bytes = try t.storage.readAll()
            fuzzCheck(bytes.count == t.storage.byteCount, "tensor \(t.name): read \(bytes.count) of \(t.storage.byteCount)")
            if Dequantize.isSupported(t.dtype) {
                let values = try bytes.withUnsafeBytes { try Dequantize.toF32(t.dtype, $0) }
                fuzzCheck(values.count == t.shape.reduce(1, *), "tensor \(t.name): \(values.count) values for shape \(t.shape)")
            }
        }
    } catch {
        checkError(error, path: path)
    }
    return 0
}

@_cdecl("fuzz_safetensors_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzzMain(argc, argv, fuzzSafetensors)
}
