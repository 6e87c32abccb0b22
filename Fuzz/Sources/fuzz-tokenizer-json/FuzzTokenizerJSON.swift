import Architectures
import Formats
import FuzzSupport
import TensorGraph
import Tokenizers

/// tokenizer.json (and tokenizer_config.json after the first NUL byte of the input, when there is
/// one): parse into a vocabulary, build the BPE tokenizer, encode and decode a fixed text, and
/// render the vocabulary back to tokenizer.json.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerJSON(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let data = input ?? UnsafePointer(bitPattern: 1)!
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let cut = bytes.firstIndex(of: 0)
    let tokenizerJSON = String(decoding: bytes[0..<(cut ?? size)], as: UTF8.self)
    let tokenizerConfig = cut.map { String(decoding: bytes[($0 + 1)...], as: UTF8.self) }
    do {
        let tok = try TokenizerJSON.parse(tokenizerJSON: tokenizerJSON, tokenizerConfig: tokenizerConfig, config: nil)
        if let bpe = try? BPETokenizer(tokenizer: tok) {
            let ids = bpe.encode("Hello world, 123 ünïcödé <s> </s>\n\t  x")
            _ = bpe.decode(ids)
        }
        _ = try? TokenizerJSON.render(tok, maxLength: 2048)
    } catch {
        checkError(error, path: nil)
    }
    return 0
}

@_cdecl("fuzz_tokenizer_json_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzzMain(argc, argv, fuzzTokenizerJSON)
}
