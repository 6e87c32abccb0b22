import Codecs
import Formats
import FuzzSupport
import TensorGraph

/// Ingot: open (prelude, trailer, header, index), read every tensor's bytes through the chunk
/// decoder, and verify. Every byte of an Ingot file is under a checksum, so a mutated input would
/// almost always stop at the first one: before reading, the harness recomputes the trailer and
/// header checksums, and (for a raw header) the chunk checksums the index records, so mutations
/// reach the parsers and decoders behind them. The checksum checks themselves are tested by the
/// unit tests. Reading and verifying must agree on whether the chunks are good.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIngot(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let data = input ?? UnsafePointer(bitPattern: 1)!
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    repairChecksums(&bytes)
    var path = write(bytes)
    do {
        var file = try IngotReader.open(path)
        if repairChunkChecksums(&bytes, file) {
            path = write(bytes)
            file = try IngotReader.open(path)
        }
        var readFailure: (any Error)?
        let largest = file.tensors.flatMap(\.chunks).map(\.rawSize).max() ?? 0
        let piece = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, largest), alignment: 64)
        defer { piece.deallocate() }
        // One whole chunk per read, last first: a read spanning chunks decodes them on Dispatch
        // worker threads, and a read that continues or repeats the previous one starts read-ahead
        // threads; both would make runs slower and not repeatable (libdispatch's caches look like
        // leaks, and a read-ahead thread still holding the file after the input has returned
        // made LeakSanitizer report the file's metadata once in 66,563 inputs).
        func read(_ t: Int, _ offset: Int, _ count: Int) -> Bool {
            do {
                try file.read(tensor: t, offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: piece[0..<count]))
                return true
            } catch {
                checkError(error, path: path)
                readFailure = error
                return false
            }
        }
        reading: for (t, tensor) in file.tensors.enumerated().reversed() {
            for c in tensor.chunks.reversed() {
                guard read(t, c.rawOffset, c.rawSize) else { break reading }
            }
        }
        let verification = file.verify(threads: 1)
        for failure in verification.failures { checkError(failure, path: path) }
        fuzzCheck(
            verification.ok == (readFailure == nil),
            "verify says \(verification.ok ? "ok" : "\(verification.failures)"), reading says \(readFailure.map { "\($0)" } ?? "ok")")
        _ = try file.graph()
    } catch {
        checkError(error, path: path)
    }
    return 0
}

private func write(_ bytes: [UInt8]) -> String {
    bytes.withUnsafeBytes { FuzzInput.write($0, name: "input.ingot") }
}

private func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
    b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) }.littleEndian
}

private func put(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
    withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { b[at + i] = $0[i] } }
}

/// The header's range when the trailer points to one that ends where the trailer starts.
private func headerRange(_ b: [UInt8]) -> Range<Int>? {
    guard b.count >= 80 else { return nil }
    let trailer = b.count - 64
    let offset = u64(b, trailer), stored = u64(b, trailer + 8)
    guard offset >= 16, offset <= UInt64(trailer), stored == UInt64(trailer) - offset else { return nil }
    return Int(offset)..<trailer
}

/// Header checksum (when the header is in range), then the trailer checksum.
private func repairChecksums(_ b: inout [UInt8]) {
    guard b.count >= 80 else { return }
    let trailer = b.count - 64
    if let header = headerRange(b) {
        put(&b, trailer + 32, XXHash64.hash(Array(b[header])))
    }
    put(&b, trailer + 56, XXHash64.hash(Array(b[0..<16]) + Array(b[trailer..<(trailer + 56)])))
}

/// Rewrites each chunk's recorded checksum (found by value in a raw header) to its bytes' hash.
private func repairChunkChecksums(_ b: inout [UInt8], _ file: IngotFile) -> Bool {
    guard let header = headerRange(b), u64(b, b.count - 64 + 24) & 0xffff_ffff == 0 else { return false }
    var changed = false
    for tensor in file.tensors {
        for c in tensor.chunks {
            let actual = XXHash64.hash(Array(b[c.offset..<(c.offset + c.storedSize)]))
            guard actual != c.checksum else { continue }
            var at = header.lowerBound
            while at + 8 <= header.upperBound {
                if u64(b, at) == c.checksum {
                    put(&b, at, actual)
                    changed = true
                    break
                }
                at += 1
            }
        }
    }
    if changed { repairChecksums(&b) }
    return changed
}

@_cdecl("fuzz_ingot_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzzMain(argc, argv, fuzzIngot)
}
