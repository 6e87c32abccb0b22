import Foundation
import TestSupport
import XCTest

/// Gemma 3 270M Q4_K_M (`make models`) against llama-perplexity on llama.cpp's F32 conversion of
/// the same weights (running estimates from its log, wiki.test.raw): ctx 512 over 3 chunks, and
/// ctx 1024 over 1 chunk, where positions past the 512-token sliding window are scored.
final class Gemma3PerplexityTests: XCTestCase {
    static let model = TestSupport.gemma3

    func perplexity(ctx: Int, chunks: Int) throws -> Double {
        let r = try TestSupport.smelt(["perplexity", Self.model, "--text", TestSupport.wikiText,
                                       "--ctx", "\(ctx)", "--chunks", "\(chunks)", "--threads", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["tokens_scored"] as? Int, chunks * (ctx / 2 - 1))
        return json["ppl"] as! Double
    }

    func testAgreesWithLlamaCppF32() throws {
        try TestSupport.requireModel(Self.model)
        for (ctx, chunks, llamaCpp) in [(512, 3, 14.9876), (1024, 1, 7.1223)] {
            let ppl = try perplexity(ctx: ctx, chunks: chunks)
            print("Gemma 3 270M ctx \(ctx), \(chunks) chunks: PPL \(ppl) (llama.cpp F32 \(llamaCpp))")
            XCTAssertEqual(ppl, llamaCpp, accuracy: llamaCpp * 0.0005, "ctx \(ctx)")
        }
    }
}
