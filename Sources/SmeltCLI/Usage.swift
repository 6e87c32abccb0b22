import ArgumentParser

/// Usage checks shared by the commands' `validate()`: a bad option value is a usage error
/// (ValidationError, exit status 64), found before any file is opened.
enum Usage {
    /// A value from the command line as it may be echoed in a message: control characters
    /// escaped, cut to 40 characters.
    static func echo(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            if out.count >= 40 {
                out += "…"
                break
            }
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `value` must be one of `allowed`.
    static func oneOf(_ option: String, _ value: String, _ allowed: [String]) throws {
        guard allowed.contains(value) else {
            let list = allowed.count == 2 ? "\(allowed[0]) or \(allowed[1])" : allowed.dropLast().joined(separator: ", ") + " or " + allowed.last!
            throw ValidationError("\(option) must be \(list), not '\(echo(value))'")
        }
    }

    /// A size such as 500MB or 2GiB.
    static func size(_ option: String, _ text: String?) throws {
        if let text, parseSize(text) == nil {
            throw ValidationError("\(option): cannot read '\(echo(text))' as a size (e.g. 500MB, 2GB, 1GiB)")
        }
    }

    /// A finite number in `range`, when given.
    static func number(_ option: String, _ value: Double?, in range: ClosedRange<Double>, what: String) throws {
        guard let value else { return }
        guard value.isFinite, range.contains(value) else { throw ValidationError("\(option) must be \(what), not \(value)") }
    }
}
