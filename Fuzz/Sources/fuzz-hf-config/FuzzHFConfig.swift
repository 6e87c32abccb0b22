import Formats
import FuzzSupport

/// Hugging Face config.json: the JSON parser and the hyperparameter table behind it, and the
/// JSON writer (whatever parses must write back to text that parses to the same value).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHFConfig(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let data = input ?? UnsafePointer(bitPattern: 1)!
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let json: JSONValue
    do { json = try JSONParser.parse(bytes) } catch {
        checkError(error, path: nil)
        return 0
    }
    let (architecture, h) = HFConfig.parse(json)
    _ = (architecture, h)
    for indent in [0, 2] {
        let text = JSONWriter.write(json, indent: indent)
        do {
            let again = try JSONParser.parse(text)
            fuzzCheck(again == json, "JSON changed through write and parse: \(text.prefix(300))")
        } catch {
            fuzzCheck(false, "written JSON does not parse: \(error): \(text.prefix(300))")
        }
    }
    return 0
}

@_cdecl("fuzz_hf_config_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzzMain(argc, argv, fuzzHFConfig)
}
