/// A typed metadata value. The cases are GGUF's value types; safetensors `__metadata__` entries
/// (always strings) and JSON configuration files fit in them too.
public indirect enum MetadataValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double)
    case bool(Bool)
    case string(String)
    /// An array of values of one type (`elementType` names it, for writers and empty arrays).
    case array(elementType: MetadataType, values: [MetadataValue])

    public var type: MetadataType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    /// The value as an integer, when it is one that fits.
    public var intValue: Int? {
        switch self {
        case let .uint8(v): Int(v)
        case let .int8(v): Int(v)
        case let .uint16(v): Int(v)
        case let .int16(v): Int(v)
        case let .uint32(v): Int(v)
        case let .int32(v): Int(v)
        case let .uint64(v): Int(exactly: v)
        case let .int64(v): Int(v)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case let .float32(v): Double(v)
        case let .float64(v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    public var description: String {
        switch self {
        case let .uint8(v): "\(v)"
        case let .int8(v): "\(v)"
        case let .uint16(v): "\(v)"
        case let .int16(v): "\(v)"
        case let .uint32(v): "\(v)"
        case let .int32(v): "\(v)"
        case let .uint64(v): "\(v)"
        case let .int64(v): "\(v)"
        case let .float32(v): "\(v)"
        case let .float64(v): "\(v)"
        case let .bool(v): "\(v)"
        case let .string(s): s.count > 80 ? "\"\(s.prefix(77))...\" (\(s.utf8.count) bytes)" : "\"\(s)\""
        case let .array(t, values):
            values.count > 8
                ? "[\(t.name) × \(values.count)]"
                : "[" + values.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

/// GGUF's metadata value type ids.
public enum MetadataType: UInt32, Sendable, Equatable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    public var name: String { String(describing: self) }
}

/// Ordered key → value metadata; every key a source file had is kept, in the order it had them.
public struct Metadata: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var values: [String: MetadataValue] = [:]

    public init() {}

    public subscript(key: String) -> MetadataValue? {
        get { values[key] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var count: Int { keys.count }
    public var entries: [(key: String, value: MetadataValue)] { keys.map { ($0, values[$0]!) } }
}
