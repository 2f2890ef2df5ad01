import DESFormat
import Testing

/// META is written exactly as Python's `json.dumps(obj, separators=(",", ":"))`
/// writes it (ensure_ascii on), so the original reads our archives and vice versa.
/// The expected strings below were produced by CPython 3's json module.
@Suite("META JSON")
struct MetadataJSONTests {
    static func json(_ meta: DESMetadata) -> String { String(decoding: meta.jsonBytes, as: UTF8.self) }

    @Test("Strings are escaped like json.dumps")
    func stringEscaping() {
        let meta: DESMetadata = [
            "q": "a\"b", "bs": "a\\b", "ctl": "\n\r\t\u{8}\u{C}\u{1}\u{1F}\u{7F}", "slash": "a/b", "e": "\u{E9}",
            "astral": "\u{1F600}", "k\u{E9}y": "x",
        ]
        #expect(
            Self.json(meta)
                == #"{"q":"a\"b","bs":"a\\b","ctl":"\n\r\t\b\f\u0001\u001f\u007f","slash":"a/b","e":"\u00e9","astral":"\ud83d\ude00","k\u00e9y":"x"}"#
        )
        // Line separators, BOM and NUL are escaped too.
        #expect(Self.json(["s": "\u{2028}\u{FEFF}\u{0}"]) == #"{"s":"\u2028\ufeff\u0000"}"#)
        // Everything written is plain ASCII.
        #expect(meta.jsonBytes.allSatisfy { $0 < 0x80 })
    }

    @Test("Other values are written like json.dumps")
    func values() {
        let meta: DESMetadata = [
            "i": .int(.min), "j": .int(.max), "t": true, "f": false, "n": nil,
            "arr": .array([1, "two", .array([]), .object([:])]),
            "obj": .object(["z": 1, "a": .object(["b": .array([nil])])]),
        ]
        #expect(
            Self.json(meta)
                == #"{"i":-9223372036854775808,"j":9223372036854775807,"t":true,"f":false,"n":null,"arr":[1,"two",[],{}],"obj":{"z":1,"a":{"b":[null]}}}"#
        )
        #expect(Self.json([:]) == "{}")
    }

    @Test(
        "Doubles are written as Python's repr writes them",
        arguments: [
            (1.5, "1.5"), (0.1, "0.1"), (1.0, "1.0"), (100.0, "100.0"), (1e16, "1e+16"), (1e22, "1e+22"), (1e-7, "1e-07"),
            (123456789012345680.0, "1.2345678901234568e+17"), (-2.5e-300, "-2.5e-300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (1e15, "1000000000000000.0"), (0.0001, "0.0001"),
            (-0.0, "-0.0"), (.nan, "NaN"), (.infinity, "Infinity"), (-.infinity, "-Infinity"),
        ] as [(Double, String)])
    func doubles(value: Double, text: String) throws {
        #expect(Self.json(["d": .double(value)]) == #"{"d":\#(text)}"#)
        let back = try DESMetadata.parse(Array(#"{"d":\#(text)}"#.utf8))
        guard case .double(let d)? = back["d"] else {
            Issue.record("\(text) did not parse as a double: \(String(describing: back["d"]))")
            return
        }
        if value.isNaN { #expect(d.isNaN) } else { #expect(d == value && d.sign == value.sign) }
    }

    @Test("Keys keep the caller's order; setting an existing key replaces it in place")
    func keyOrder() {
        var meta: DESMetadata = ["z": 1, "a": 2, "m": 3]
        meta["a"] = "two"
        meta["new"] = true
        meta["z"] = nil
        #expect(meta.keys == ["a", "m", "new"])
        #expect(Self.json(meta) == #"{"a":"two","m":3,"new":true}"#)
        let dup = DESMetadata([("k", 1), ("other", 2), ("k", 3)])
        #expect(Self.json(dup) == #"{"k":3,"other":2}"#)
    }

    @Test("parse(jsonBytes) gives back the same metadata")
    func roundTrip() throws {
        let meta: DESMetadata = [
            "s": "plain", "esc": "q\"b\\s/\n\t\u{1}\u{7F}", "u": "é日本😀", "neg": -42, "big": .int(.max), "small": .int(.min),
            "f": 3.25, "t": true, "n": nil,
            "nested": .object(["list": .array([1, .array([2, .array(["deep"])]), .object(["k": false])]), "empty": .object([:])]),
        ]
        #expect(try DESMetadata.parse(meta.jsonBytes) == meta)
        // Order matters to equality: the same pairs in another order are a different object.
        let reordered = DESMetadata(meta.pairs.reversed().map { ($0.key, $0.value) })
        #expect(try DESMetadata.parse(meta.jsonBytes) != reordered)
    }

    @Test("parse reads what Python writes, including escapes and whitespace")
    func parsePythonText() throws {
        let text = #" { "k\u00e9y" : "\u00e9\ud83d\ude00\/\b" , "a" : [ 1 , -2.5e3 , true , null ] , "o" : { } } "#
        let meta = try DESMetadata.parse(Array(text.utf8))
        #expect(meta.keys == ["kéy", "a", "o"])
        #expect(meta["kéy"] == .string("é😀/\u{8}"))
        #expect(meta["a"] == .array([1, .double(-2500), true, nil]))
        #expect(meta["o"] == .object([:]))
        // Raw UTF-8 in strings (the original may write it with ensure_ascii off) is accepted too.
        #expect(try DESMetadata.parse(Array(#"{"k":"日本"}"#.utf8))["k"] == "日本")
    }

    @Test(
        "parse rejects what is not one JSON object",
        arguments: [
            "", "[]", "1", "\"s\"", "{", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1}x", "{\"a\":1}{}", "{a:1}", "{\"a\":tru}",
            "{\"a\":\"unterminated}", "{\"a\":\"bad \\q escape\"}", "{\"a\":\"\u{1}\"}", "{\"a\":-}", "{\"a\":1.2.3}",
            "{\"a\":\"\\u12\"}",
        ])
    func parseRejects(text: String) {
        let e = formatError { _ = try DESMetadata.parse(Array(text.utf8)) }
        #expect(e?.code == .badMetadata)
        #expect(e?.message.isEmpty == false)
    }

    @Test("Invalid UTF-8 inside a string is rejected")
    func invalidUTF8() {
        let bytes: [UInt8] = Array(#"{"a":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)
        #expect(formatError { _ = try DESMetadata.parse(bytes) }?.code == .badMetadata)
    }

    @Test("Deeply nested input is refused rather than overflowing the stack")
    func deepNesting() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let e = formatError { _ = try DESMetadata.parse(Array(#"{"a":\#(deep)}"#.utf8)) }
        #expect(e?.code == .badMetadata)
        // Moderate nesting is fine.
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(try DESMetadata.parse(Array(#"{"a":\#(ok)}"#.utf8)).count == 1)
    }

    @Test("The writer stores caller keys, then size, then sha256, escaped as above")
    func writerUsesTheSameJSON() throws {
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/j.des", options: writerOptions(checksums: false))
            try writer.add(name: "f", bytes: [1, 2], metadata: ["title": "caf\u{E9} \u{1F600}", "q": "\"", "n": .object(["x": nil])])
            try writer.close()
            let raw = try DESArchiveReader(path: dir + "/j.des").rawMeta(named: "f")
            #expect(String(decoding: raw, as: UTF8.self) == #"{"title":"caf\u00e9 \ud83d\ude00","q":"\"","n":{"x":null},"size":2}"#)
        }
    }
}
