/// A glob over paths relative to a scan root, `/`-separated, as `.gitignore` and rsync read them:
///
/// - a pattern without `/` matches a name at any depth (`*.tmp`, `.*`);
/// - a pattern with `/` matches the whole relative path from the root (`inbox/*.eml`, `a/**/b`);
/// - `*` is any run of characters but `/`, `?` one character but `/`, `[abc]`, `[a-z]` and
///   `[!abc]` one character of (or not of) a set, `**` any run of characters including `/`
///   (`**/` also matches nothing: `a/**/b` matches `a/b`); `\` takes the next character as it is.
///
/// Matching works on the UTF-8 bytes: no allocation per path.
public struct PathGlob: Sendable, Hashable, CustomStringConvertible {
    /// The pattern as written.
    public let pattern: String
    private let bytes: [UInt8]
    /// Whether it matches the whole relative path (it holds a `/`), not one name.
    public let anchored: Bool

    /// A glob; a pattern that ends inside `[` … is refused.
    public init(_ pattern: String) throws {
        var p = pattern
        if p.hasPrefix("/") { p.removeFirst() }  // `/x` anchors `x` at the root, as in .gitignore
        self.pattern = pattern
        self.bytes = Array(p.utf8)
        self.anchored = pattern.contains("/")
        guard !p.isEmpty else { throw PathGlobError(pattern: pattern, problem: "is empty") }
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if bytes[i] == UInt8(ascii: "[") {
                guard Self.setEnd(bytes[...], from: i) != nil else { throw PathGlobError(pattern: pattern, problem: "has a [ with no ]") }
            }
            i += 1
        }
    }

    public var description: String { pattern }

    /// Whether `path` (relative to the root, `/`-separated, no leading `/`) matches: the whole path
    /// for an anchored pattern, else its last name.
    public func matches(path: some Collection<UInt8>) -> Bool {
        let all = Array(path)
        if anchored { return Self.match(bytes[...], all[...]) }
        let start = (all.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 }) ?? 0
        return Self.match(bytes[...], all[start...])
    }

    /// Whether `path` matches.
    public func matches(_ path: String) -> Bool { matches(path: path.utf8) }

    /// Where the set opening at `from` (`[`) closes (the index of its `]`), or nil.
    static func setEnd(_ p: ArraySlice<UInt8>, from: Int) -> Int? {
        var j = from + 1
        if j < p.endIndex, p[j] == UInt8(ascii: "!") || p[j] == UInt8(ascii: "^") { j += 1 }
        if j < p.endIndex, p[j] == UInt8(ascii: "]") { j += 1 }  // a leading ] is a member
        while j < p.endIndex {
            if p[j] == UInt8(ascii: "]") { return j }
            j += 1
        }
        return nil
    }

    /// Whether `c` is in the set `p[open...close]`.
    static func inSet(_ c: UInt8, _ p: ArraySlice<UInt8>, open: Int, close: Int) -> Bool {
        var j = open + 1
        var negate = false
        if p[j] == UInt8(ascii: "!") || p[j] == UInt8(ascii: "^") {
            negate = true
            j += 1
        }
        var found = false
        var first = true
        while j < close || (first && j == close) {
            first = false
            if j + 2 < close, p[j + 1] == UInt8(ascii: "-") {
                if p[j] <= c && c <= p[j + 2] { found = true }
                j += 3
            } else {
                if p[j] == c { found = true }
                j += 1
            }
        }
        return found != negate
    }

    /// Matches pattern `p` against text `t`, backtracking on the last `*` and `**` only.
    static func match(_ p: ArraySlice<UInt8>, _ t: ArraySlice<UInt8>) -> Bool {
        let slash = UInt8(ascii: "/")
        var pi = p.startIndex
        var ti = t.startIndex
        // The last `*` (may not cross `/`) and `**` (may) to go back to.
        var star: (p: Int, t: Int)? = nil
        var doubleStar: (p: Int, t: Int)? = nil
        while true {
            if pi < p.endIndex {
                let c = p[pi]
                if c == UInt8(ascii: "*") {
                    if pi + 1 < p.endIndex, p[pi + 1] == UInt8(ascii: "*") {
                        var next = pi + 2
                        // `**/` may match nothing at all: `a/**/b` matches `a/b`.
                        if next < p.endIndex, p[next] == slash { next += 1 }
                        doubleStar = (next, ti)
                        star = nil
                        pi = next
                        continue
                    }
                    star = (pi + 1, ti)
                    pi += 1
                    continue
                }
                if ti < t.endIndex {
                    var matched = false
                    var width = 1
                    if c == UInt8(ascii: "?") {
                        matched = t[ti] != slash
                    } else if c == UInt8(ascii: "["), let close = setEnd(p, from: pi) {
                        matched = t[ti] != slash && inSet(t[ti], p, open: pi, close: close)
                        width = close - pi + 1
                    } else if c == UInt8(ascii: "\\"), pi + 1 < p.endIndex {
                        matched = t[ti] == p[pi + 1]
                        width = 2
                    } else {
                        matched = t[ti] == c
                    }
                    if matched {
                        pi += width
                        ti += 1
                        continue
                    }
                }
            } else if ti == t.endIndex {
                return true
            }
            // A mismatch: let the last `*` take one more character (not a `/`), else the last `**`.
            if let s = star, s.t < t.endIndex, t[s.t] != slash {
                star = (s.p, s.t + 1)
                (pi, ti) = (s.p, s.t + 1)
                continue
            }
            if let d = doubleStar, d.t < t.endIndex {
                doubleStar = (d.p, d.t + 1)
                star = nil
                (pi, ti) = (d.p, d.t + 1)
                continue
            }
            return false
        }
    }
}

/// A glob that cannot be read, naming it and why.
public struct PathGlobError: Error, Sendable, CustomStringConvertible {
    /// The pattern.
    public var pattern: String
    /// What is wrong with it.
    public var problem: String
    public var description: String { "the glob '\(pattern)' \(problem)" }
}
