import Architectures
import Formats
import FuzzSupport
import TensorGraph
import Tokenizers

/// The tokenizer on arbitrary bytes, with the real (small) vocabularies of golden/tiny: the first
/// input byte picks the vocabulary and whether special-token texts are parsed, the rest is the
/// text. Every id must be in the vocabulary, and valid UTF-8 encoded without special parsing must
/// decode back to itself.
let tokenizers: [BPETokenizer] = ["gpt2", "llama", "qwen2"].map { name in
    let dir = FuzzInput.golden + "/tiny/" + name
    let json = String(decoding: FuzzInput.contents(dir + "/tokenizer.json"), as: UTF8.self)
    let config = String(decoding: FuzzInput.contents(dir + "/tokenizer_config.json"), as: UTF8.self)
    do {
        return try BPETokenizer(tokenizer: TokenizerJSON.parse(tokenizerJSON: json, tokenizerConfig: config, config: nil))
    } catch {
        fatalError("\(dir): \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let data = input ?? UnsafePointer(bitPattern: 1)!
    guard size > 0 else { return 0 }
    let bpe = tokenizers[Int(data[0]) % tokenizers.count]
    let parseSpecial = data[0] & 0x80 != 0
    let text = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let ids = bpe.encode(utf8: text, addBOS: false, parseSpecial: parseSpecial)
    for id in ids { fuzzCheck(id >= 0 && Int(id) < bpe.vocabularySize, "id \(id) outside the \(bpe.vocabularySize)-token vocabulary") }
    let decoded = bpe.decodeBytes(ids)
    if !parseSpecial, String(validating: text, as: UTF8.self) != nil {
        fuzzCheck(decoded == text, "round trip changed \(text) into \(decoded) (ids \(ids))")
    }
    return 0
}

@_cdecl("fuzz_tokenizer_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzzMain(argc, argv, fuzzTokenizer)
}
