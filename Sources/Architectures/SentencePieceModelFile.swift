import Formats
import TensorGraph

/// A bare SentencePiece `tokenizer.model` (a protobuf `ModelProto`): the fields llama.cpp's
/// converter uses, read by a minimal protobuf reader (varints, length-delimited fields, fixed
/// 32/64-bit fields; anything else skipped by its wire type).
///
/// ModelProto: 1 = pieces (repeated SentencePiece: 1 piece, 2 score (float), 3 type), 2 =
/// trainer_spec (3 model_type: 1 unigram, 2 BPE; 35 byte_fallback; 40–43 unk/bos/eos/pad ids),
/// 3 = normalizer_spec (3 add_dummy_prefix).
public struct SentencePieceModelFile: Sendable, Equatable {
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public struct Piece: Sendable, Equatable {
        public var text: String
        public var score: Float
        public var type: PieceType
    }

    public var pieces: [Piece] = []
    /// 1 unigram, 2 BPE (trainer_spec.model_type; SentencePiece's default is unigram).
    public var modelType = 1
    public var byteFallback = false
    public var unknownID = 0, bosID = 1, eosID = 2, padID = -1
    /// normalizer_spec.add_dummy_prefix (default true).
    public var addDummyPrefix = true

    static let file = "tokenizer.model"

    static func fail(_ reason: String) -> ArchitectureError { .badTokenizer(file: file, reason: reason) }

    public init(bytes: [UInt8]) throws {
        var top = Reader(bytes: bytes[...])
        while let (field, value) = try top.next() {
            switch (field, value) {
            case let (1, .bytes(b)):
                var r = Reader(bytes: b)
                var piece = Piece(text: "", score: 0, type: .normal)
                while let (f, v) = try r.next() {
                    switch (f, v) {
                    case let (1, .bytes(s)):
                        guard let text = String(validating: s, as: UTF8.self) else {
                            throw Self.fail("piece \(pieces.count) is not valid UTF-8")
                        }
                        piece.text = text
                    case let (2, .fixed32(bits)): piece.score = Float(bitPattern: bits)
                    case let (3, .varint(t)):
                        guard let type = PieceType(rawValue: Int(truncatingIfNeeded: t)) else {
                            throw Self.fail("piece \(pieces.count) has type \(t), not 1...6")
                        }
                        piece.type = type
                    default: break
                    }
                }
                pieces.append(piece)
            case let (2, .bytes(b)):
                var r = Reader(bytes: b)
                while let (f, v) = try r.next() {
                    guard case let .varint(n) = v else { continue }
                    let i = Int(Int32(truncatingIfNeeded: n))
                    switch f {
                    case 3: modelType = i
                    case 35: byteFallback = n != 0
                    case 40: unknownID = i
                    case 41: bosID = i
                    case 42: eosID = i
                    case 43: padID = i
                    default: break
                    }
                }
            case let (3, .bytes(b)):
                var r = Reader(bytes: b)
                while let (f, v) = try r.next() {
                    if f == 3, case let .varint(n) = v { addDummyPrefix = n != 0 }
                }
            default:
                break
            }
        }
        guard !pieces.isEmpty else { throw Self.fail("no pieces (not a SentencePiece model)") }
    }

    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed32(UInt32)
    }

    struct Reader {
        var bytes: ArraySlice<UInt8>

        mutating func varint() throws -> UInt64 {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard let b = bytes.popFirst() else { throw SentencePieceModelFile.fail("truncated varint") }
                guard shift < 64 else { throw SentencePieceModelFile.fail("varint longer than 10 bytes") }
                v |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
        }

        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, n <= bytes.count else {
                throw SentencePieceModelFile.fail("a field of \(n) bytes runs past the end (\(bytes.count) left)")
            }
            let out = bytes.prefix(n)
            bytes = bytes.dropFirst(n)
            return out
        }

        /// The next field, or nil at the end.
        mutating func next() throws -> (Int, Value)? {
            guard !bytes.isEmpty else { return nil }
            let key = try varint()
            let field = Int(truncatingIfNeeded: key >> 3)
            switch key & 7 {
            case 0: return (field, .varint(try varint()))
            case 1:
                let b = try take(8)
                return (field, .fixed64(b.reversed().reduce(0) { $0 << 8 | UInt64($1) }))
            case 2:
                let n = try varint()
                guard n <= UInt64(Int.max) else { throw SentencePieceModelFile.fail("field length \(n)") }
                return (field, .bytes(try take(Int(n))))
            case 5:
                let b = try take(4)
                return (field, .fixed32(b.reversed().reduce(0) { $0 << 8 | UInt32($1) }))
            default:
                throw SentencePieceModelFile.fail("field \(field) has wire type \(key & 7) (groups are not used by SentencePiece)")
            }
        }
    }
}
