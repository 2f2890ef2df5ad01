/// "Did you mean …?" for misspelt keys and choices.
public enum KeySuggestion {
    /// The candidate `word` most likely stands for, or nil when none is close.
    ///
    /// A candidate matches when it differs only in case, `_`/`-` or camel case
    /// (`poolSize`, `Pool-Size` → `pool_size`), or when its edit distance
    /// (Levenshtein, with an adjacent swap counting as one edit) is at most 2 and
    /// smaller than the word's length (so `x` does not suggest `id`).
    public static func suggest(for word: String, among candidates: some Sequence<String>) -> String? {
        let folded = fold(word)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates where candidate != word {
            if fold(candidate) == folded { return candidate }
            let d = distance(word.lowercased(), candidate.lowercased())
            guard d <= 2, d < word.count else { continue }
            if best == nil || d < best?.distance ?? Int.max { best = (candidate, d) }
        }
        return best?.candidate
    }

    /// Lowercased, with `_`, `-` and spaces removed.
    static func fold(_ word: String) -> String {
        String(word.lowercased().filter { $0 != "_" && $0 != "-" && $0 != " " })
    }

    /// Edit distance (insertions, deletions, substitutions and swaps of neighbours each cost 1).
    static func distance(_ a: String, _ b: String) -> Int {
        let s = Array(a.unicodeScalars)
        let t = Array(b.unicodeScalars)
        if s.isEmpty { return t.count }
        if t.isEmpty { return s.count }
        // Three rows suffice for the optimal-string-alignment variant.
        var before = [Int](repeating: 0, count: t.count + 1)
        var previous = Array(0...t.count)
        var current = [Int](repeating: 0, count: t.count + 1)
        for i in 1...s.count {
            current[0] = i
            for j in 1...t.count {
                let cost = s[i - 1] == t[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, s[i - 1] == t[j - 2], s[i - 2] == t[j - 1] {
                    value = min(value, before[j - 2] + 1)
                }
                current[j] = value
            }
            (before, previous, current) = (previous, current, before)
        }
        return previous[t.count]
    }
}
