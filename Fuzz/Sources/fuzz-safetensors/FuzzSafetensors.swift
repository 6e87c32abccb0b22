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
        try fuzzReadAllTensors(graph)
    } catch {
        checkError(error, path: path)
    }
    return 0
}

@_cdecl("fuzz_safetensors_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzzMain(argc, argv, fuzzSafetensors)
}
