/// An entity tag (RFC 9110 §8.8.3): `"opaque"`, or `W/"opaque"` when weak.
struct EntityTag: Equatable, Sendable {
    /// The characters between the quotes.
    var opaque: String
    /// Whether the tag is weak (`W/` before the quotes).
    var weak: Bool

    /// A strong tag.
    init(strong opaque: String) {
        self.opaque = opaque
        self.weak = false
    }

    init(opaque: String, weak: Bool) {
        self.opaque = opaque
        self.weak = weak
    }

    /// The tag as a header writes it.
    var header: String { (weak ? "W/" : "") + "\"" + opaque + "\"" }

    /// Weak comparison (§8.8.3.2): the opaque parts are equal, whatever their weakness
    /// (`If-None-Match`).
    func matchesWeakly(_ other: EntityTag) -> Bool { opaque == other.opaque }

    /// Strong comparison: neither is weak and the opaque parts are equal (`If-Range`).
    func matchesStrongly(_ other: EntityTag) -> Bool { !weak && !other.weak && opaque == other.opaque }

    /// One tag alone (`If-Range`, once dates are told apart); nil when `text` is not exactly one.
    static func parse(_ text: String) -> EntityTag? {
        var scanner = Scanner(Array(text.utf8))
        scanner.skipSpaces()
        guard let tag = scanner.tag() else { return nil }
        scanner.skipSpaces()
        return scanner.atEnd ? tag : nil
    }

    /// A small reader of the tag grammar over bytes.
    fileprivate struct Scanner {
        let bytes: [UInt8]
        var at = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { at >= bytes.count }
        var next: UInt8? { atEnd ? nil : bytes[at] }

        mutating func skipSpaces() {
            while let b = next, b == 0x20 || b == 0x09 { at += 1 }
        }

        /// `[W/] DQUOTE *etagc DQUOTE`, with etagc = %x21 / %x23-7E / obs-text.
        mutating func tag() -> EntityTag? {
            var weak = false
            if next == 0x57, at + 1 < bytes.count, bytes[at + 1] == 0x2F {  // "W/", case-sensitive
                weak = true
                at += 2
            }
            guard next == 0x22 else { return nil }
            at += 1
            let start = at
            while let b = next, b != 0x22 {
                guard b == 0x21 || (0x23...0x7E).contains(b) || b >= 0x80 else { return nil }
                at += 1
            }
            guard next == 0x22 else { return nil }  // unterminated
            let opaque = String(decoding: bytes[start..<at], as: UTF8.self)
            at += 1
            return EntityTag(opaque: opaque, weak: weak)
        }
    }
}

/// The value of `If-None-Match` (RFC 9110 §13.1.2): `*`, or a list of entity tags.
enum EntityTagList: Equatable, Sendable {
    /// `*`: any current representation.
    case any
    /// The listed tags, in order.
    case tags([EntityTag])

    /// The list of one or more field lines (joined by commas, as a list field may be split);
    /// nil when it is not valid (such a condition is ignored: the full answer is always safe).
    static func parse(_ lines: [String]) -> EntityTagList? {
        let text = lines.joined(separator: ",")
        var scanner = EntityTag.Scanner(Array(text.utf8))
        var tags: [EntityTag] = []
        var star = false
        while true {
            scanner.skipSpaces()
            if scanner.atEnd { break }
            if scanner.next == 0x2C {  // empty list elements are allowed (§5.6.1)
                scanner.at += 1
                continue
            }
            if scanner.next == 0x2A {  // "*"
                scanner.at += 1
                star = true
            } else {
                guard let tag = scanner.tag() else { return nil }
                tags.append(tag)
            }
            scanner.skipSpaces()
            guard scanner.atEnd || scanner.next == 0x2C else { return nil }
        }
        if star { return tags.isEmpty ? .any : nil }  // "*" stands alone
        return tags.isEmpty ? nil : .tags(tags)
    }

    /// Whether the list matches a file that exists with `etag` (nil: it has none): `*` matches
    /// any file; a list when one of its tags matches, weakly (`If-None-Match`: a true match
    /// answers a GET or HEAD with 304) or, with `strongly`, strongly (`If-Match`, RFC 9110
    /// §13.1.1: a weak tag never matches, and a false match answers 412).
    func matches(_ etag: EntityTag?, strongly: Bool = false) -> Bool {
        switch self {
        case .any: return true
        case .tags(let tags):
            guard let etag else { return false }
            return tags.contains { strongly ? $0.matchesStrongly(etag) : $0.matchesWeakly(etag) }
        }
    }
}

extension EntityTagList {
    /// Whether the `If-Match` field lines `lines` (none: no condition) let a request on a file
    /// that exists with `etag` go on. A value that is not a valid list names no tag, so it is
    /// false: a client that asked for a check is never answered as if it had passed.
    static func ifMatchAllows(_ lines: [String], etag: EntityTag?) -> Bool {
        guard !lines.isEmpty else { return true }
        return parse(lines)?.matches(etag, strongly: true) ?? false
    }
}

/// `If-Range` (RFC 9110 §13.1.5): whether a `Range` may be honoured. Only a strong tag equal
/// to the file's strong ETag lets it through; a weak tag, a date (the files have no
/// `Last-Modified`, so no date can match), garbage or another tag means the whole file, 200.
enum IfRange {
    /// Whether the range applies, given the `If-Range` header (nil: absent) and the file's ETag.
    static func allowsRange(_ header: String?, etag: EntityTag?) -> Bool {
        guard let header else { return true }
        guard let etag, let given = EntityTag.parse(header) else { return false }
        return given.matchesStrongly(etag)
    }
}
