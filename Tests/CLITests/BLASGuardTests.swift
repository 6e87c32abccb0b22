import Foundation
import TestSupport
import XCTest

/// The guard of the BLAS kernel choice, on whatever machine runs the tests: `smelt` must never run
/// generic kernels on a processor whose vector features it recognises.
final class BLASGuardTests: XCTestCase {
    /// `smelt system --json` with the BLAS variables of this environment removed (extra ones added).
    func system(_ extra: [String] = []) throws -> [String: Any] {
        let args = ["-u", "OPENBLAS_CORETYPE", "-u", "SMELT_BLAS_SELECTED", "-u", "SMELT_BLAS_SELECT", "-u", "SMELT_BLAS_ASSUME_CORE"]
            + extra + [TestSupport.smeltBinary, "system", "--json"]
        let r = try TestSupport.run("/usr/bin/env", args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    }

    static let tiers = ["sse", "avx", "avx2", "avx512"]

    func testNoGenericKernelsOnACapableProcessor() throws {
        let report = try system()
        let cpu = try XCTUnwrap(report["cpu"] as? [String: Any]), blas = try XCTUnwrap(report["blas"] as? [String: Any])
        let cpuTier = try XCTUnwrap(Self.tiers.firstIndex(of: cpu["tier"] as? String ?? ""), "\(cpu)")
        let check = try XCTUnwrap(report["sgemm_self_check"] as? [String: Any])
        XCTAssertEqual(check["passed"] as? Bool, true, "\(check)")
        guard cpuTier >= 2 else { return }  // no AVX2: the generic kernels are the right ones
        let core = blas["core"] as? String ?? "?"
        let coreTier = try XCTUnwrap(Self.tiers.firstIndex(of: blas["core_tier"] as? String ?? ""),
                                     "BLAS core \(core) is not one smelt knows (\(blas))")
        XCTAssertGreaterThanOrEqual(coreTier, 2, "generic BLAS kernels (\(core)) on a \(cpu["tier"]!) processor: \(blas["note"]!)")
    }

    /// The selection itself, made to happen on any processor: as if the library had fallen back to
    /// Prescott, smelt re-executes with the kernels matching the processor.
    func testGenericFallbackIsReplacedByReexecution() throws {
        let report = try system(["SMELT_BLAS_ASSUME_CORE=Prescott"])
        let cpu = try XCTUnwrap(report["cpu"] as? [String: Any]), blas = try XCTUnwrap(report["blas"] as? [String: Any])
        switch cpu["tier"] as? String {
        case "avx512":
            XCTAssertEqual(blas["core"] as? String, "SkylakeX")
            XCTAssertEqual(blas["core_source"] as? String, "smelt")
            XCTAssertEqual(blas["replaced_core"] as? String, "Prescott")
        case "avx2":
            XCTAssertEqual(blas["core"] as? String, "Haswell")
            XCTAssertEqual(blas["core_source"] as? String, "smelt")
        default:
            XCTAssertEqual(blas["core_source"] as? String, "library")
        }
    }

    /// A user's OPENBLAS_CORETYPE wins, even a generic one.
    func testUserCoreTypeWins() throws {
        let report = try system(["OPENBLAS_CORETYPE=Prescott"])
        let blas = try XCTUnwrap(report["blas"] as? [String: Any])
        XCTAssertEqual(blas["core"] as? String, "Prescott")
        XCTAssertEqual(blas["core_source"] as? String, "environment")
    }
}
