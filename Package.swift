// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Smelt",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "smelt", targets: ["SmeltCLI"]),
        .library(name: "TensorGraph", targets: ["TensorGraph"]),
        .library(name: "Formats", targets: ["Formats"]),
        // For the fuzz targets in Fuzz/ (a package of its own).
        .library(name: "Codecs", targets: ["Codecs"]),
        .library(name: "Quantization", targets: ["Quantization"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Architectures", targets: ["Architectures"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries behind thin system-library targets.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // Linux calls Swift cannot reach: renameat2 and the signal handler that removes temporary outputs.
        .target(name: "CPlatform"),

        // The intermediate representation: depends on nothing but Foundation.
        .target(name: "TensorGraph", dependencies: ["CPlatform"]),
        // Compression codecs (zstd) used by containers.
        .target(name: "Codecs", dependencies: ["CZstd"]),
        // cpuid and XCR0: which vector units the processor has and the OS enables (x86-64; empty elsewhere).
        .target(name: "CCPUID"),
        // Numeric kernels over OpenBLAS, and the choice of its kernels for this processor.
        .target(name: "Kernels", dependencies: ["CBLAS", "CCPUID"]),
        // Block quantization types: decode (dequantize) and encode, reference implementations.
        .target(name: "Quantization", dependencies: ["TensorGraph"]),
        // Readers and writers, one folder per format.
        // (Quantization: the folder flavours re-express ggml block types exactly.)
        .target(name: "Formats", dependencies: ["TensorGraph", "Codecs", "CPlatform", "Quantization"]),
        // Byte-level BPE tokenization (llama.cpp-exact pre-tokenizers and merges).
        .target(name: "Tokenizers", dependencies: ["TensorGraph"]),
        // Architecture knowledge: HF ↔ GGUF names, layouts, config keys and tokenizers (tables from formats/).
        .target(name: "Architectures", dependencies: ["TensorGraph", "Formats", "Quantization"]),
        // The forward pass, perplexity and drift over any model the tensor graph reads.
        .target(
            name: "Evaluator", dependencies: ["TensorGraph", "Kernels", "Quantization", "Formats", "Architectures", "Tokenizers"],
            // Pointer-heavy kernels shared across threads: checked by tests, not by Sendable.
            swiftSettings: [.swiftLanguageMode(.v5), .unsafeFlags(["-Ounchecked"])]),
        // Calibrated quantization: quantization recipes, importance matrices (llama-imatrix's GGUF layout),
        // importance-weighted scale search and GPTQ over the forward pass.
        .target(
            name: "Calibration",
            dependencies: ["TensorGraph", "Quantization", "Formats", "Architectures", "Evaluator", "Kernels"]),
        // Report pages: report data → one self-contained HTML page with inline SVG charts.
        .target(name: "Reports", dependencies: ["Formats"]),
        // The `smelt` command: wiring and printing only.
        .executableTarget(
            name: "SmeltCLI",
            dependencies: [
                "TensorGraph", "Codecs", "Formats", "Quantization", "Architectures", "Evaluator", "Tokenizers", "Calibration", "Kernels", "Reports",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Helpers shared by the test targets (paths, subprocesses, golden files, the corpus and
        // the real-model policy). Test targets that run the `smelt` binary depend on SmeltCLI; they
        // run the binary built beside the test bundle, which `swift test` (filtered too) relinks first.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorGraphTests", dependencies: ["TensorGraph", "TestSupport"]),
        .testTarget(name: "CodecsTests", dependencies: ["Codecs"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization", "TensorGraph", "TestSupport"]),
        // Throughput benchmarks (with checks of what they time): `make bench` runs them in release,
        // `make test` skips them.
        .testTarget(name: "BenchmarkTests", dependencies: ["Quantization", "TensorGraph", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TensorGraph", "Quantization", "TestSupport", "SmeltCLI"]),
        .testTarget(
            name: "ArchitecturesTests", dependencies: ["Architectures", "Formats", "TensorGraph", "TestSupport", "SmeltCLI"]),
        .testTarget(
            name: "EvaluatorTests",
            dependencies: ["Evaluator", "Architectures", "Formats", "TensorGraph", "TestSupport", "SmeltCLI"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "Formats", "TensorGraph", "TestSupport", "SmeltCLI"]),
        .testTarget(name: "CLITests", dependencies: ["SmeltCLI", "TestSupport"]),
        .testTarget(
            name: "ReportsTests",
            dependencies: ["Reports", "Calibration", "Evaluator", "Formats", "TensorGraph", "TestSupport", "SmeltCLI"]),
        .testTarget(
            name: "CalibrationTests",
            dependencies: [
                "Calibration", "Quantization", "Evaluator", "Kernels", "Formats", "TensorGraph", "Architectures", "Tokenizers",
                "TestSupport", "SmeltCLI",
            ]),
    ]
)
