import Foundation

/// A single-range `Range` header against a file of `size` bytes (RFC 9110 §14).
enum ByteRange: Equatable {
    /// No range applies (another unit, or several ranges): the whole file, 200.
    case whole
    /// The inclusive byte range to send, 206.
    case slice(ClosedRange<UInt64>)
    /// A range starting past the end, or an empty suffix: 416.
    case unsatisfiable
    /// Not a byte range: 400.
    case malformed

    static func parse(_ header: String, size: UInt64) -> ByteRange {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst(6).trimmingCharacters(in: .whitespaces)
        if spec.contains(",") { return .whole }  // several ranges: the whole file is a valid answer
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .malformed }
        let (first, last) = (parts[0].trimmingCharacters(in: .whitespaces), parts[1].trimmingCharacters(in: .whitespaces))
        // Digits only (no sign, no spaces); a position past UInt64 is simply very large.
        func number(_ s: String) -> UInt64? {
            guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return UInt64(s) ?? UInt64.max
        }
        if first.isEmpty {
            guard let n = number(last) else { return .malformed }
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .slice((size - min(n, size))...(size - 1))
        }
        guard let start = number(first) else { return .malformed }
        let end: UInt64
        if last.isEmpty {
            end = size &- 1
        } else {
            guard let e = number(last) else { return .malformed }
            guard e >= start else { return .malformed }
            end = min(e, size &- 1)
        }
        guard size > 0, start < size else { return .unsatisfiable }
        return .slice(start...end)
    }
}
