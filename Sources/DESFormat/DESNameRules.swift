/// The rules a name must follow to be written into a DES archive.
///
/// Names are UTF-8, 1–65535 bytes, with no control characters and none of
/// `\ : * ? " < > |`. `/` separates path segments, so a packed directory keeps
/// its tree: no leading `/`, and no empty, `.` or `..` segment. Readers accept
/// whatever an archive holds; these rules apply when writing and unpacking.
public enum DESNameRules {
    /// Checks a name and throws an ``DESFormatError/Code/invalidName`` error saying what is wrong.
    public static func validate(_ name: String) throws {
        var utf8Count = 0
        var segmentLength = 0
        var segmentDots = 0
        var segmentIndex = 0

        func badSegment() -> DESFormatError? {
            if segmentLength == 0 {
                return segmentIndex == 0 && utf8Count <= 1
                    ? invalid(name, "must not start with '/'") : invalid(name, "has an empty path segment")
            }
            if segmentDots == segmentLength && segmentLength <= 2 {
                return invalid(name, "has a '\(segmentLength == 1 ? "." : "..")' path segment")
            }
            return nil
        }

        for scalar in name.unicodeScalars {
            utf8Count += UTF8.width(scalar)
            let v = scalar.value
            if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) {
                throw invalid(name, "contains the control character U+\(hex4(v))")
            }
            switch scalar {
            case "\\", ":", "*", "?", "\"", "<", ">", "|":
                throw invalid(name, "contains the forbidden character '\(scalar)'")
            case "/":
                if let error = badSegment() { throw error }
                segmentIndex += 1
                segmentLength = 0
                segmentDots = 0
            case ".":
                segmentLength += 1
                segmentDots += 1
            default:
                segmentLength += 1
            }
        }
        if utf8Count == 0 { throw invalid(name, "is empty") }
        if utf8Count > DESFormat.maximumNameLength {
            throw invalid(name, "is \(utf8Count) bytes long; the limit is \(DESFormat.maximumNameLength)")
        }
        if segmentLength == 0 { throw invalid(name, "ends with '/'") }
        if let error = badSegment() { throw error }
    }

    /// Whether `name` follows the rules.
    public static func isValid(_ name: String) -> Bool {
        do { try validate(name); return true } catch { return false }
    }

    private static func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    private static func invalid(_ name: String, _ problem: String) -> DESFormatError {
        DESFormatError(.invalidName, "invalid name \(quoted(name)): it \(problem)")
    }

    /// Whether `a` sorts before `b` by their UTF-8 bytes: the order of the two-level index's
    /// leaves and of the name ranges the metadata store records, whatever a locale or a
    /// database collation would say.
    public static func precedes(_ a: String, _ b: String) -> Bool { ExactText.byteOrder(a, b) < 0 }

    /// A name quoted for messages: control characters escaped (as ``escapedForDisplay(_:)``), long names shortened.
    static func quoted(_ name: String) -> String {
        var out = "\""
        var count = 0
        for scalar in name.unicodeScalars {
            if count == 120 { out += "…"; break }
            count += 1
            appendEscaped(scalar, to: &out)
        }
        return out + "\""
    }

    /// A name made safe for a terminal, one line per name: C0 and C1 control characters, DEL,
    /// the bidirectional and other invisible format controls, and the backslash are written as
    /// escapes (`\n`, `\t`, `\r`, `\\`, `\x1b`, `\u{202e}`), so a hostile name can neither fake
    /// entries nor drive the terminal. Every other character is kept.
    public static func escapedForDisplay(_ name: String) -> String {
        var out = ""
        out.reserveCapacity(name.utf8.count)
        for scalar in name.unicodeScalars { appendEscaped(scalar, to: &out) }
        return out
    }

    /// Whether ``escapedForDisplay(_:)`` would change `name`.
    public static func needsEscaping(_ name: String) -> Bool {
        name.unicodeScalars.contains(where: isUnsafeForDisplay)
    }

    private static func isUnsafeForDisplay(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x00...0x1F, 0x5C, 0x7F...0x9F, 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2069, 0xFEFF: return true
        default: return false
        }
    }

    private static func appendEscaped(_ scalar: Unicode.Scalar, to out: inout String) {
        guard isUnsafeForDisplay(scalar) else {
            out.unicodeScalars.append(scalar)
            return
        }
        switch scalar.value {
        case 0x0A: out += "\\n"
        case 0x09: out += "\\t"
        case 0x0D: out += "\\r"
        case 0x5C: out += "\\\\"
        case 0x00...0x7F:
            let hex = String(scalar.value, radix: 16)
            out += "\\x" + (hex.count == 1 ? "0" : "") + hex
        default: out += "\\u{" + String(scalar.value, radix: 16) + "}"
        }
    }
}
