/// `${VAR}` and `${VAR:-default}` in config values.
///
/// - `${VAR}` is the variable's value; a variable that is not set is an error.
/// - `${VAR:-default}` is the value, or `default` when the variable is unset or empty.
/// - `$${` is a literal `${`. Any other `$` is kept as it is.
///
/// Names are `[A-Za-z_][A-Za-z0-9_]*`. Defaults are taken literally up to the
/// first `}` (they are not expanded themselves).
enum EnvironmentExpansion {
    /// Why a value cannot be expanded.
    enum Failure: Error, Equatable {
        /// `${NAME}` with `NAME` unset and no default.
        case missingVariable(String)
        /// A `${` without its `}`.
        case unterminated
        /// `${…}` whose content is not a variable name (the content is kept for the message).
        case badName(String)
    }

    /// The result of expanding one value.
    struct Result: Equatable {
        /// The text with every reference replaced.
        var text: String
        /// Whether at least one `${…}` was replaced.
        var substituted: Bool
    }

    /// Expands every reference in `text`.
    static func expand(_ text: String, environment: [String: String]) throws(Failure) -> Result {
        // Fast path: nothing to do.
        guard text.utf8.contains(UInt8(ascii: "$")) else { return Result(text: text, substituted: false) }
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var substituted = false
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            guard c == "$" else {
                out.append(c)
                i += 1
                continue
            }
            if i + 2 < scalars.count, scalars[i + 1] == "$", scalars[i + 2] == "{" {
                out.append(contentsOf: "${".unicodeScalars)
                i += 3
                continue
            }
            guard i + 1 < scalars.count, scalars[i + 1] == "{" else {
                out.append(c)
                i += 1
                continue
            }
            guard let close = scalars[(i + 2)...].firstIndex(of: "}") else { throw .unterminated }
            let inner = String(String.UnicodeScalarView(scalars[(i + 2)..<close]))
            let name: String
            let fallback: String?
            if let range = inner.range(of: ":-") {
                name = String(inner[..<range.lowerBound])
                fallback = String(inner[range.upperBound...])
            } else {
                name = inner
                fallback = nil
            }
            guard isVariableName(name) else { throw .badName(inner) }
            let value: String
            if let set = environment[name], !set.isEmpty {
                value = set
            } else if let fallback {
                value = fallback
            } else if let set = environment[name] {
                value = set
            } else {
                throw .missingVariable(name)
            }
            out.append(contentsOf: value.unicodeScalars)
            substituted = true
            i = close + 1
        }
        return Result(text: String(out), substituted: substituted)
    }

    /// Whether `name` is `[A-Za-z_][A-Za-z0-9_]*`.
    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || (0x30...0x39).contains($0) }
    }

    private static func isLetter(_ b: UInt8) -> Bool {
        (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
    }
}
