import Formats
import FuzzSupport
import Quantization
import TensorGraph
import Tokenizers

/// GGUF: parse the header and metadata, build the graph (architecture, hyperparameters, tokenizer
/// views), read every tensor's bytes, dequantize those with a decoder, and build the tokenizer
/// when the file has a vocabulary.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let data = input ?? UnsafePointer(bitPattern: 1)!
    let path = FuzzInput.write(data, size, name: "input.gguf")
    do {
        let graph = try GGUFReader.read(path)
        try fuzzReadAllTensors(graph)
        if !graph.tokenizer.tokens.isEmpty, let bpe = try? BPETokenizer(tokenizer: graph.tokenizer) {
            let ids = bpe.encode("Hello world, 123 ünïcödé <s> </s>\n\t  x")
            _ = bpe.decode(ids)
        }
    } catch {
        checkError(error, path: path)
    }
    return 0
}

@_cdecl("fuzz_gguf_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzzMain(argc, argv, fuzzGGUF)
}
