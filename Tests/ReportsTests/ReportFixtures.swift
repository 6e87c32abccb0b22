import Calibration
import Formats
import Foundation
import TensorGraph
import TestSupport

/// Inputs the report tests share: the tiny Llama (golden/tiny/llama) and a sensitivity file made
/// by hand for it (formats/sensitivity.md's layout, made-up predictions that fall with the bits).
enum ReportFixtures {
    static let llama = TestSupport.path("golden/tiny/llama")
    static let candidates = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs", "f16"]

    /// A made-up prediction: a tensor's share of the parameters times 2^-(bits per weight of the
    /// stored type), so more bits always predict less drift.
    static func predicted(parameters: Int, total: Int, stored: DType, shape: [Int]) -> Double {
        let bytes = (try? stored.byteCount(shape: shape)) ?? parameters * 4
        let bpw = Double(bytes) * 8 / Double(parameters)
        return Double(parameters) / Double(total) * pow(2, -bpw)
    }

    /// The hand-made sensitivity file for the tiny Llama: every 2-D tensor chosen for, each
    /// candidate stored as llama-quantize's fallback where its blocks do not divide the rows.
    static func sensitivity(graph: TensorGraph, rounding: String = "imatrix") -> JSONValue {
        let total = graph.parameterCount
        var tensors: [JSONValue] = [], fixed: [JSONValue] = []
        let tied = !graph.tensors.contains { $0.name == "output.weight" }
        for t in graph.tensors {
            let role: JSONValue = FileTypeMix.Role.of(t.name, tiedEmbedding: tied).map { .string($0.rawValue) } ?? .null
            let layer: JSONValue = t.name.hasPrefix("blk.") ? .int(Int(t.name.split(separator: ".")[1])!) : .null
            guard t.shape.count == 2 else {
                fixed.append(.object([("name", .string(t.name)), ("role", role), ("layer", layer), ("type", .string("f32")),
                                      ("parameters", .int(t.elementCount)), ("bytes", .int(t.elementCount * 4))]))
                continue
            }
            let types: [JSONValue] = candidates.map { c in
                let want = DType(name: c)!
                let stored = FileTypeMix.fitting(want, shape: t.shape)?.type ?? .f32
                let bytes = try! stored.byteCount(shape: t.shape)
                // Three file types as points, made up (the real ones are priced by `smelt sensitivity`).
        let fileTypes: [JSONValue] = [("Q4_0", 4.5, 0.04), ("Q4_K_M", 5.9, 0.02), ("Q8_0", 8.6, 0.003)].map { name, bpw, kld in
            .object([("name", .string(name)), ("tensor_bytes", .int(Int(bpw * Double(total) / 8))), ("bits_per_weight", .double(bpw)),
                     ("predicted_kld", .double(kld))])
        }
        return .object([
                    ("type", .string(c)), ("valid", .bool(stored == want)), ("stored", .string(stored.rawValue.lowercased())),
                    ("bytes", .int(bytes)), ("weighted_error", .double(1)),
                    ("predicted_kld", .double(predicted(parameters: t.elementCount, total: total, stored: stored, shape: t.shape))),
                ])
            }
            let measured = predicted(parameters: t.elementCount, total: total, stored: .q4_0, shape: t.shape) * 1.1
            tensors.append(.object([
                ("name", .string(t.name)), ("role", role), ("layer", layer), ("shape", .array(t.shape.map { .int($0) })),
                ("parameters", .int(t.elementCount)), ("gain", .double(0.5)), ("reference", .string("q4_0")),
                ("measured_kld", .double(measured)), ("types", .array(types)),
            ]))
        }
        let curve: [JSONValue] = [3.0, 4.0, 4.5, 5.0, 6.0, 8.5].map { bpw in
            .object([("name", .null), ("tensor_bytes", .int(Int(bpw * Double(total) / 8))), ("bits_per_weight", .double(bpw)),
                     ("predicted_kld", .double(pow(2, -bpw)))])
        }
        // Three file types as points, made up (the real ones are priced by `smelt sensitivity`).
        let fileTypes: [JSONValue] = [("Q4_0", 4.5, 0.04), ("Q4_K_M", 5.9, 0.02), ("Q8_0", 8.6, 0.003)].map { name, bpw, kld in
            .object([("name", .string(name)), ("tensor_bytes", .int(Int(bpw * Double(total) / 8))), ("bits_per_weight", .double(bpw)),
                     ("predicted_kld", .double(kld))])
        }
        return .object([
            ("format", .string("smelt.sensitivity")), ("version", .int(1)), ("model", .string("golden/tiny/llama <tiny> & \"test\"")),
            ("architecture", .string("llama")),
            ("calibration", .object([("text", .string("corpus/groups_merged.txt")), ("ctx", .int(32)), ("chunks", .int(4)),
                                     ("gain_chunks", .int(1)), ("check_chunks", .int(1)), ("imatrix", .null)])),
            ("rounding", .string(rounding)), ("estimator", .string("made by hand for the report tests")),
            ("candidates", .array(candidates.map { .string($0) })), ("parameters", .int(total)),
            ("tensors", .array(tensors)), ("fixed", .array(fixed)), ("file_types", .array(fileTypes)), ("curve", .array(curve)),
            ("check", .object([("spearman", .double(0.9)), ("median_ratio", .double(1.05)), ("pairs", .array([
                .object([("tensor", .string("blk.0.ffn_down.weight")), ("type", .string("q4_0")),
                         ("predicted_kld", .double(0.004)), ("measured_kld", .double(0.0037))]),
            ]))])),
            ("seconds", .double(1.5)), ("threads", .int(2)),
        ])
    }
}
