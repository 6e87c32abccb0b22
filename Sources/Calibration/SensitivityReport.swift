import Foundation

/// What `smelt sensitivity` writes and `smelt quantize --sensitivity` reads: per quantizable
/// tensor and candidate type, the bytes it would take and the drift (mean KLD, nats per scored
/// position) that quantizing that tensor alone to that type is predicted to cause. The layout is
/// documented in `formats/sensitivity.md`; keys are snake_case, `version` changes when a field's
/// meaning does.
public struct SensitivityReport: Codable, Sendable, Equatable {
    public static let formatName = "smelt.sensitivity"
    public static let currentVersion = 1

    public var format: String = SensitivityReport.formatName
    public var version: Int = SensitivityReport.currentVersion
    /// The model measured (as given on the command line) and its architecture.
    public var model: String
    public var architecture: String?
    /// The calibration text and how it was cut.
    public var calibration: Calibration
    /// How tensors are rounded in the estimate: `imatrix` (importance-weighted search) or `rtn`.
    public var rounding: String
    /// One sentence on the estimator.
    public var estimator: String
    /// The candidate types, ggml names in lower case (`q4_0`, `q4_k`, `iq4_xs`, `f16`, …).
    public var candidates: [String]
    /// Parameters of every tensor in the model (the denominator of bits per weight).
    public var parameters: Int
    /// The tensors the allocation chooses for.
    public var tensors: [TensorEntry]
    /// The tensors it does not (norms, biases, anything a recipe rule fixes), with their type.
    public var fixed: [FixedEntry]
    /// llama.cpp's file types as points on the same axes (their mix on this model, priced with
    /// this file's predictions), for plots.
    public var fileTypes: [Point]
    /// The allocator's frontier: the least predicted drift at a range of sizes.
    public var curve: [Point]
    /// Held-out exact measurements against the prediction (nil when not run).
    public var check: Check?
    /// Wall seconds the estimate took, and the threads it used.
    public var seconds: Double
    public var threads: Int

    public struct Calibration: Codable, Sendable, Equatable {
        public var text: String
        public var ctx: Int
        /// Chunks the importance matrix was collected from.
        public var chunks: Int
        /// Chunks each exact gain measurement ran over (the first of the text).
        public var gainChunks: Int
        /// Chunks the held-out check ran over (after the gain chunks; 0: no check).
        public var checkChunks: Int
        /// The importance matrix used, when it was read from a file rather than collected.
        public var imatrix: String?

        public init(text: String, ctx: Int, chunks: Int, gainChunks: Int, checkChunks: Int, imatrix: String?) {
            self.text = text
            self.ctx = ctx
            self.chunks = chunks
            self.gainChunks = gainChunks
            self.checkChunks = checkChunks
            self.imatrix = imatrix
        }
    }

    public struct TensorEntry: Codable, Sendable, Equatable {
        public var name: String
        /// llama-quantize's role (`attn_v`, `ffn_down`, `output`, …), nil for others.
        public var role: String?
        /// N of `blk.N.`, nil for tensors outside the blocks.
        public var layer: Int?
        public var shape: [Int]
        public var parameters: Int
        /// KLD per unit of weighted error: measured KLD at `reference` ÷ its weighted error.
        public var gain: Double
        /// The type the exact single-tensor KLD was measured at, and the value.
        public var reference: String
        public var measuredKld: Double
        /// One entry per candidate, in `candidates` order.
        public var types: [TypeEntry]
    }

    public struct TypeEntry: Codable, Sendable, Equatable {
        /// The candidate asked for.
        public var type: String
        /// Whether its blocks divide the rows.
        public var valid: Bool
        /// The type actually stored: `type` when valid, else its fallback (formats/recipes/fallbacks.json),
        /// `f32` when none fits.
        public var stored: String
        public var bytes: Int
        /// Σ_rows Σ_j importance_j · (w − ŵ)², importance the mean square of input column j.
        public var weightedError: Double
        public var predictedKld: Double
    }

    public struct FixedEntry: Codable, Sendable, Equatable {
        public var name: String
        public var role: String?
        public var layer: Int?
        public var type: String
        public var parameters: Int
        public var bytes: Int
    }

    public struct Point: Codable, Sendable, Equatable {
        /// A file type's name (`Q4_K_M`), or nil for a point of the curve.
        public var name: String?
        /// Bytes of all tensors (fixed included) and 8 × that ÷ parameters.
        public var tensorBytes: Int
        public var bitsPerWeight: Double
        /// Σ over the chosen tensors of their predicted KLD.
        public var predictedKld: Double
    }

    public struct Check: Codable, Sendable, Equatable {
        public struct Pair: Codable, Sendable, Equatable {
            public var tensor: String
            public var type: String
            public var predictedKld: Double
            public var measuredKld: Double
        }
        /// Spearman rank correlation of predicted and measured over `pairs`.
        public var spearman: Double
        /// Median of predicted ÷ measured.
        public var medianRatio: Double
        public var pairs: [Pair]
    }

    public init(
        model: String, architecture: String?, calibration: Calibration, rounding: String, estimator: String,
        candidates: [String], parameters: Int, tensors: [TensorEntry], fixed: [FixedEntry], fileTypes: [Point] = [],
        curve: [Point] = [], check: Check? = nil, seconds: Double, threads: Int
    ) {
        self.model = model
        self.architecture = architecture
        self.calibration = calibration
        self.rounding = rounding
        self.estimator = estimator
        self.candidates = candidates
        self.parameters = parameters
        self.tensors = tensors
        self.fixed = fixed
        self.fileTypes = fileTypes
        self.curve = curve
        self.check = check
        self.seconds = seconds
        self.threads = threads
    }

    /// Bytes of the fixed tensors.
    public var fixedBytes: Int { fixed.reduce(0) { $0 + $1.bytes } }

    // MARK: - JSON

    public func json() throws -> Data {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try e.encode(self)
    }

    public static func read(_ path: String) throws -> SensitivityReport {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CalibrationError.badInput("\(path): cannot read the sensitivity file")
        }
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let r: SensitivityReport
        do { r = try d.decode(SensitivityReport.self, from: data) } catch {
            throw CalibrationError.badInput("\(path): not a sensitivity file: \(error)")
        }
        guard r.format == formatName else {
            throw CalibrationError.badInput("\(path): format is '\(r.format)', expected '\(formatName)'")
        }
        guard r.version == currentVersion else {
            throw CalibrationError.badInput("\(path): sensitivity format version \(r.version); this smelt reads version \(currentVersion)")
        }
        for t in r.tensors where t.types.count != r.candidates.count {
            throw CalibrationError.badInput("\(path): tensor '\(t.name)' has \(t.types.count) type entries for \(r.candidates.count) candidates")
        }
        return r
    }

    public func write(to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        try json().write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw CalibrationError.badInput("\(path): cannot write (errno \(errno))")
        }
    }
}
