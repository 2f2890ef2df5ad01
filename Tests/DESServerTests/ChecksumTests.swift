@testable import DESPluginS3
import DESKit
@testable import DESServer
import DESTestSupport
import Foundation
import Testing

@Suite("GET /files checks every body") struct ChecksumTests {
    /// `des_read_checksum_failures_total` on a server.
    static func failures(_ server: RunningServer) -> Int {
        metricSum(server.metrics.registry.emitToString(), "des_read_checksum_failures_total")
    }

    @Test("a flipped byte in a small body: 502 checksum_mismatch (whole and ranged), never 200; counted; its neighbours still 200")
    func smallBodyFlipped() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(4, size: 5000, filesPerContainer: 10)
        try shelf.flipByte(of: names[0], at: 4321)
        try await withServer(shelf) { server, client in
            let url = server.base + "/files/" + path(names[0])
            let r = try await client.send("GET", url)
            #expect(r.status == 502 && client.errorCode(r) == "checksum_mismatch", "\(String(decoding: r.body, as: UTF8.self))")
            #expect(r.headers["etag"] == nil && r.headers["content-type"] == "application/json")
            let ranged = try await client.send("GET", url, headers: ["Range": "bytes=0-9"])  // bytes 0-9 are intact, the body is not
            #expect(ranged.status == 502 && client.errorCode(ranged) == "checksum_mismatch")
            #expect(Self.failures(server) == 2)
            let text = String(decoding: r.body, as: UTF8.self)
            #expect(!text.contains(shelf.dir) && !text.contains("des/"), "no path or key in \(text)")
            for name in names.dropFirst() {
                let ok = try await client.send("GET", server.base + "/files/" + path(name))
                #expect(ok.status == 200 && ok.body == shelf.files[name]?.bytes)
            }
            #expect(Self.failures(server) == 2)
        }
    }

    @Test("a body up to server.verify_max_bytes is checked whole, so a large one flipped is a clean 502 when the bound covers it")
    func boundCoversLargeBody() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(1, size: (3 << 20) + 7)
        try shelf.flipByte(of: names[0], at: (3 << 20))  // in the last chunk
        try await withServer(shelf, edit: { $0.verifyMaxBytes = 4 << 20 }) { server, client in
            let r = try await client.send("GET", server.base + "/files/" + path(names[0]))
            #expect(r.status == 502 && client.errorCode(r) == "checksum_mismatch")
            #expect(Self.failures(server) == 1)
        }
    }

    @Test("a large body flipped streams: the connection closes short of Content-Length, so no client takes it whole")
    func largeBodyFlippedIsCutShort() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let size = (3 << 20) + 12_345
        let names = try await shelf.pack(2, size: size)
        try shelf.flipByte(of: names[0], at: 10)  // in the first chunk: caught only at the end
        try await withServer(shelf) { server, client in
            // Raw: the status line and headers went out, then fewer bytes than announced, then the close.
            let socket = try RawSocket(port: server.port)
            try socket.send("GET /files/\(path(names[0])) HTTP/1.1\r\nHost: t\r\n\r\n")
            let (bytes, closed) = socket.readToEnd(within: 30)
            #expect(closed, "the server must close the connection")
            let answer = try #require(RawAnswer(bytes))
            #expect(answer.status == 200 && answer.headers["content-length"] == String(size))
            #expect(answer.body.count < size, "got \(answer.body.count) of \(size) bytes")
            // A client library sees a failed transfer, never a complete 200.
            do {
                let r = try await client.send("GET", server.base + "/files/" + path(names[0]))
                #expect(r.body.count < size && r.body != shelf.files[names[0]]?.bytes, "a complete body was accepted")
            } catch {
                // A transport error (curl: partial file): what a client must see.
            }
            #expect(Self.failures(server) == 2)
            // The intact one streams whole, checked.
            let ok = try await client.send("GET", server.base + "/files/" + path(names[1]))
            #expect(ok.status == 200 && ok.body == shelf.files[names[1]]?.bytes)
            // A range of a body past the bound cannot be checked without reading it all: served as stored.
            let slice = try await client.send("GET", server.base + "/files/" + path(names[0]), headers: ["Range": "bytes=0-99"])
            #expect(slice.status == 206 && slice.body.count == 100)
            #expect(Self.failures(server) == 2)
            // A range covering the whole body (bytes=0-) reads all of it: checked as the whole body is.
            let whole = try RawSocket(port: server.port)
            try whole.send("GET /files/\(path(names[0])) HTTP/1.1\r\nHost: t\r\nRange: bytes=0-\r\n\r\n")
            let (wholeBytes, wholeClosed) = whole.readToEnd(within: 30)
            let wholeAnswer = try #require(RawAnswer(wholeBytes))
            #expect(wholeClosed && wholeAnswer.status == 206 && wholeAnswer.body.count < size, "\(wholeAnswer.status), \(wholeAnswer.body.count) bytes")
            #expect(Self.failures(server) == 3)
            // All but the first byte, and all but the last: at least half the body, so checked too
            // (read whole and hashed; the range's last piece held back): cut short, never complete.
            for header in ["bytes=1-", "bytes=0-\(size - 2)", "bytes=\(size / 2)-"] {
                let part = try RawSocket(port: server.port)
                try part.send("GET /files/\(path(names[0])) HTTP/1.1\r\nHost: t\r\nRange: \(header)\r\n\r\n")
                let (partBytes, partClosed) = part.readToEnd(within: 30)
                let partAnswer = try #require(RawAnswer(partBytes))
                let announced = Int(partAnswer.headers["content-length"] ?? "") ?? -1
                #expect(partClosed && partAnswer.status == 206 && partAnswer.body.count < announced, "\(header): \(partAnswer.body.count) of \(announced)")
            }
            #expect(Self.failures(server) == 6)
            // The intact body's large ranges are whole and right.
            let good = try await client.send("GET", server.base + "/files/" + path(names[1]), headers: ["Range": "bytes=1-"])
            #expect(good.status == 206 && good.body == Array((shelf.files[names[1]]?.bytes ?? [])[1...]))
            let tail = try await client.send("GET", server.base + "/files/" + path(names[1]), headers: ["Range": "bytes=\(size / 2)-\(size - 3)"])
            #expect(tail.status == 206 && tail.body == Array((shelf.files[names[1]]?.bytes ?? [])[(size / 2)...(size - 3)]))
        }
    }

    @Test("an archive written without checksums (as the original wrote them) is served as before, unchecked")
    func noChecksumServedUnchecked() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(2, size: 3000, checksums: false)
        try shelf.flipByte(of: names[0], at: 5)
        try await withServer(shelf) { server, client in
            let r = try await client.send("GET", server.base + "/files/" + path(names[0]))
            #expect(r.status == 200 && r.body.count == 3000 && r.headers["etag"] == nil)
            let intact = try await client.send("GET", server.base + "/files/" + path(names[1]))
            #expect(intact.status == 200 && intact.body == shelf.files[names[1]]?.bytes)
            #expect(Self.failures(server) == 0)
        }
    }
}
