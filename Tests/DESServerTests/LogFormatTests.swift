@testable import DESPluginS3
import DESTestSupport
import Foundation
import Testing

@Suite("DES_LOG_FORMAT=json")
struct LogFormatTests {
    @Test("One JSON object per line; a request's lines carry its X-Request-ID, which the answer echoes")
    func jsonLines() async throws {
        let d = try SQLiteDeployment("logs", extra: "server: {auth_tokens: [log-test-token-0123456789]}")
        defer { d.cleanup() }
        let (dir, config) = (d.dir, d.config)
        #expect(try await runDES(["sample", "-c", config, "--files", "5"]).0 == 0)
        #expect(try await runDES(["marker", "run", "-c", config, "--until-idle"]).0 == 0)
        #expect(try await runDES(["packer", "run", "-c", config, "--until-idle"]).0 == 0)
        let name = try d.packedName()

        let p = Process()
        p.executableURL = URL(fileURLWithPath: try desBinary())
        p.arguments = ["serve", "-c", config, "--port", "0"]
        var environment = ProcessInfo.processInfo.environment
        environment["DES_LOG_FORMAT"] = "json"
        environment["DES_LOG_LEVEL"] = "info"
        p.environment = environment
        let out = Pipe()
        let errFile = dir + "/stderr.log"
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        p.standardOutput = out
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errFile))
        try p.run()
        let line = await firstLine(out.fileHandleForReading)
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, "\(line)")
        let client = Client()
        let deleted = try await client.send(
            "DELETE", "http://127.0.0.1:\(port)/files/\(path(name))?reason=log-test", headers: ["X-Request-ID": "trace-42.a", "Authorization": "Bearer log-test-token-0123456789"])
        #expect(deleted.status == 200 || deleted.status == 204, "\(String(decoding: deleted.body, as: UTF8.self))")
        #expect(deleted.headers["x-request-id"] == "trace-42.a")
        let made = try await client.send("GET", "http://127.0.0.1:\(port)/health/live")
        let madeID = try #require(made.headers["x-request-id"])
        #expect(!madeID.isEmpty && madeID != "trace-42.a")
        await client.close()
        kill(p.processIdentifier, SIGTERM)
        await waitForExit(p)
        let lines = try String(contentsOfFile: errFile, encoding: .utf8).split(separator: "\n")
        #expect(!lines.isEmpty)
        var objects: [[String: Any]] = []
        for l in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any], "not JSON: \(l)")
            #expect(object["ts"] is String && object["level"] is String && object["logger"] is String && object["msg"] is String, "\(l)")
            objects.append(object)
        }
        let deletion = try #require(objects.first { $0["msg"] as? String == "file deleted" }, "\(lines)")
        #expect(deletion["request_id"] as? String == "trace-42.a")
        #expect(deletion["name"] as? String == name)
    }
}
