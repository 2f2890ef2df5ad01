import DESKit
import Foundation
import Testing

@testable import DESStorage

/// The local body fetcher's two ways of keeping a catalog row inside the body root — the
/// kernel's (`openat2` beneath the root) and the portable one (resolving every link) — must
/// give the same answer for every kind of path.
@Suite("Body root confinement") struct BodyConfinementTests {
    /// A root with a file, a sub-folder, links that stay inside and links that leave.
    struct Tree {
        let dir: String
        var root: String { dir + "/root" }

        init() throws {
            dir = NSTemporaryDirectory() + "des-confine-" + UUID().uuidString
            let fm = FileManager.default
            try fm.createDirectory(atPath: dir + "/root/sub", withIntermediateDirectories: true)
            try "inside".write(toFile: dir + "/root/sub/file.txt", atomically: true, encoding: .utf8)
            try "secret".write(toFile: dir + "/secret.txt", atomically: true, encoding: .utf8)
            // Stays inside: relative, and absolute (the kernel refuses any absolute link; the fetcher must not).
            try fm.createSymbolicLink(atPath: dir + "/root/relative-in", withDestinationPath: "sub/file.txt")
            try fm.createSymbolicLink(atPath: dir + "/root/absolute-in", withDestinationPath: dir + "/root/sub/file.txt")
            // Leaves: relative through `..`, absolute, and a folder link.
            try fm.createSymbolicLink(atPath: dir + "/root/relative-out", withDestinationPath: "../secret.txt")
            try fm.createSymbolicLink(atPath: dir + "/root/absolute-out", withDestinationPath: dir + "/secret.txt")
            try fm.createSymbolicLink(atPath: dir + "/root/sub/up", withDestinationPath: dir)
        }

        func cleanup() { try? FileManager.default.removeItem(atPath: dir) }
    }

    enum Outcome: Equatable { case reads(String), escapes, missing }

    static func outcome(_ fetcher: LocalBodyFetcher, _ key: String) async -> Outcome {
        do {
            let body = try await fetcher.fetch(BodyLocation(bucket: nil, key: key))
            let fd = try body.opener?() ?? fetcher.open(key)
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = read(fd, &buffer, buffer.count)
            return .reads(String(decoding: buffer[..<max(0, n)], as: UTF8.self))
        } catch let error as DESKitError where error.code == .notFound {
            return .missing
        } catch let error as DESKitError where error.message.contains("escapes the body root") {
            return .escapes
        } catch {
            Issue.record("unexpected error for \(key): \(error)")
            return .missing
        }
    }

    @Test("Kernel and portable confinement agree: links inside are followed, every way out is refused")
    func bothWaysAgree() async throws {
        let tree = try Tree()
        defer { tree.cleanup() }
        let expected: [(String, Outcome)] = [
            ("sub/file.txt", .reads("inside")),
            ("sub/../sub/file.txt", .reads("inside")),
            ("relative-in", .reads("inside")),
            ("absolute-in", .reads("inside")),
            ("relative-out", .escapes),
            ("absolute-out", .escapes),
            ("sub/up/secret.txt", .escapes),
            ("../secret.txt", .escapes),
            ("sub/../../secret.txt", .escapes),
            ("no-such-file", .missing),
            ("../no-such-file", .escapes),
        ]
        for kernel in [true, false] {
            let fetcher = LocalBodyFetcher(root: tree.root, allowAbsolute: false, kernelConfinement: kernel)
            for (key, want) in expected {
                let got = await Self.outcome(fetcher, key)
                #expect(got == want, "\(key) with kernel confinement \(kernel): \(got)")
            }
        }
    }

    @Test("A body swapped for a link after the fetch is still refused when it is opened")
    func swapAfterFetch() async throws {
        let tree = try Tree()
        defer { tree.cleanup() }
        let fetcher = LocalBodyFetcher(root: tree.root)
        try "plain".write(toFile: tree.root + "/swap.txt", atomically: true, encoding: .utf8)
        let body = try await fetcher.fetch(BodyLocation(bucket: nil, key: "swap.txt"))
        let opener = try #require(body.opener, "a relative local body is opened when appended")
        try FileManager.default.removeItem(atPath: tree.root + "/swap.txt")
        try FileManager.default.createSymbolicLink(atPath: tree.root + "/swap.txt", withDestinationPath: tree.dir + "/secret.txt")
        #expect(throws: DESKitError.self) { _ = try opener() }
    }
}
