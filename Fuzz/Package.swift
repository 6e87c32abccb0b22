// swift-tools-version:6.0
// libFuzzer targets for Smelt's readers and parsers: a package of its own, so the main package's
// build and tests never see the fuzzer flags. Build with
//   swift build -c release -Xswiftc -sanitize=fuzzer,address   (see `make fuzz`)
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, so the products are looked up under whatever
// the checkout is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let smelt = root.lastPathComponent

func target(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: smelt) },
        swiftSettings: [.unsafeFlags(["-parse-as-library"])])
}

let package = Package(
    name: "SmeltFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        // Input files, golden paths and small checks shared by the targets.
        .target(name: "FuzzSupport", dependencies: [.product(name: "TensorGraph", package: smelt), .product(name: "Quantization", package: smelt)]),
        target("fuzz-gguf", ["TensorGraph", "Formats", "Quantization", "Tokenizers"]),
        target("fuzz-safetensors", ["TensorGraph", "Formats", "Quantization"]),
        target("fuzz-ingot", ["TensorGraph", "Formats", "Codecs"]),
        target("fuzz-hf-config", ["Formats"]),
        target("fuzz-tokenizer-json", ["TensorGraph", "Formats", "Architectures", "Tokenizers"]),
        target("fuzz-tokenizer", ["TensorGraph", "Formats", "Architectures", "Tokenizers"]),
        // Writes the committed Ingot seeds (not a fuzz target; built without the fuzzer flags).
        .executableTarget(
            name: "ingot-seeds", dependencies: [.product(name: "TensorGraph", package: smelt), .product(name: "Formats", package: smelt)]),
    ]
)
