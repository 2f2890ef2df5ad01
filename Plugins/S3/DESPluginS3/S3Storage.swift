import DESKit
import Foundation
import Logging

/// Containers in an S3 bucket (any S3-compatible server), over ``S3Client``.
///
/// `put` is one request below ``S3Settings/multipartThreshold`` and a multipart upload above it,
/// its parts sent in parallel and the upload aborted when any part fails (a reader sees the
/// whole object or none). Reads are ranged `GET`s; the suffix read (`bytes=-N`) returns the
/// object's size from `Content-Range`, so a cold container read needs no `HEAD`.
public final class S3Storage: StorageBackend {
    public let client: S3Client
    /// Key prefix inside the bucket (`storage.prefix` is the containers' own prefix; this one is none).
    public var location: String { "s3://\(client.settings.bucket)" }

    /// Keys per list page (nil: the server's default, 1,000 on S3); tests make it small.
    let pageSize: Int?

    /// Creates storage over `client`.
    public convenience init(client: S3Client) { self.init(client: client, pageSize: nil) }

    init(client: S3Client, pageSize: Int?) {
        self.client = client
        self.pageSize = pageSize
    }

    public func put(key: String, fromFile path: String) async throws -> ObjectInfo {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        if size >= client.settings.multipartThreshold { return try await multipartPut(key: key, path: path, size: size) }
        let r = try await client.send(
            .init(method: "PUT", key: key, headers: ["content-type": "application/octet-stream"],
                  body: .file(path: path, offset: 0, length: size), payloadHash: nil, operation: "PutObject"))
        return ObjectInfo(key: key, size: size, etag: Self.etag(r))
    }

    /// Create, upload parts in parallel, complete — or abort, so that no part is left behind.
    private func multipartPut(key: String, path: String, size: UInt64) async throws -> ObjectInfo {
        let created = try await client.send(
            .init(method: "POST", key: key, query: [("uploads", "")], headers: ["content-type": "application/octet-stream"],
                  operation: "CreateMultipartUpload"))
        guard let uploadID = XML.first("UploadId", in: String(decoding: created.body, as: UTF8.self)) else {
            throw DESKitError(.storage, "S3 CreateMultipartUpload \(key): no UploadId in the answer")
        }
        let partSize = max(5 << 20, client.settings.partSize)
        let parts = Int((size + partSize - 1) / partSize)
        do {
            let client = self.client
            let limit = max(1, client.settings.partConcurrency)
            var etags = [String](repeating: "", count: parts)
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                var next = 0
                func add() {
                    let n = next
                    let offset = UInt64(n) * partSize
                    let length = min(partSize, size - offset)
                    group.addTask {
                        let r = try await client.send(
                            .init(method: "PUT", key: key, query: [("partNumber", String(n + 1)), ("uploadId", uploadID)],
                                  body: .file(path: path, offset: offset, length: length), payloadHash: nil, operation: "UploadPart"))
                        return (n, Self.etag(r))
                    }
                    next += 1
                }
                while next < min(parts, limit) { add() }
                for try await (n, etag) in group {
                    etags[n] = etag
                    if next < parts { add() }
                }
            }
            let body = "<CompleteMultipartUpload>"
                + etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(XML.escape($0.element))</ETag></Part>" }
                .joined() + "</CompleteMultipartUpload>"
            let bytes = Array(body.utf8)
            let done = try await client.send(
                .init(method: "POST", key: key, query: [("uploadId", uploadID)], headers: ["content-type": "application/xml"],
                      body: .bytes(bytes), payloadHash: SigV4.hex(SigV4.sha256(bytes)), operation: "CompleteMultipartUpload"))
            let xml = String(decoding: done.body, as: UTF8.self)
            // S3 may answer 200 with an error in the body.
            if let code = XML.first("Code", in: xml), xml.contains("<Error>") {
                throw DESKitError(.storage, "S3 CompleteMultipartUpload \(key) failed: \(code)")
            }
            let etag = XML.first("ETag", in: xml)?.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) ?? ""
            return ObjectInfo(key: key, size: size, etag: etag)
        } catch {
            _ = try? await client.send(
                .init(method: "DELETE", key: key, query: [("uploadId", uploadID)], operation: "AbortMultipartUpload"))
            throw error
        }
    }

    /// A multipart upload of `size` bytes of `path` (tests: a size larger than the file makes it fail).
    func multipartPutForTesting(key: String, path: String, size: UInt64) async throws -> ObjectInfo {
        try await multipartPut(key: key, path: path, size: size)
    }

    public func get(key: String) async throws -> [UInt8] {
        try await client.send(.init(method: "GET", key: key, operation: "GetObject")).body
    }

    public func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        try await get(key: key, offset: offset, length: length, ifMatch: nil)
    }

    /// `length` bytes from `offset`, only from the version whose ETag is `ifMatch` when given:
    /// a changed object (412) is a ``DESKitError`` with code `changed`.
    public func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8] {
        if length == 0 { return [] }
        var headers = ["range": "bytes=\(offset)-\(offset + length - 1)"]
        if let ifMatch { headers["if-match"] = "\"\(ifMatch)\"" }
        let r = try await client.send(.init(method: "GET", key: key, headers: headers, operation: "GetObject"), accept: [200, 206, 412])
        if r.status == 412 { throw DESKitError(.changed, "s3://\(client.settings.bucket)/\(key) changed (it is no longer version \(ifMatch ?? "?"))") }
        guard UInt64(r.body.count) == length else {
            throw DESKitError(.storage, "S3 GetObject \(key): asked for \(length) bytes at \(offset), got \(r.body.count)")
        }
        return r.body
    }

    public func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        let (bytes, total, _) = try await getSuffixVersioned(key: key, length: length)
        return (bytes, total)
    }

    /// The suffix read's ETag too: the version the reader pins its ranged reads to (no HEAD).
    public func getSuffixVersioned(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64, version: String?) {
        let r = try await client.send(.init(method: "GET", key: key, headers: ["range": "bytes=-\(max(1, length))"], operation: "GetObject"))
        // 206 with Content-Range "bytes a-b/total"; 200 (the whole object) when the server ignores the range.
        var total = UInt64(r.body.count)
        if let range = r.headers["content-range"], let slash = range.lastIndex(of: "/"), let t = UInt64(range[range.index(after: slash)...]) {
            total = t
        }
        return (r.body, total, Self.etag(r))
    }

    public func close() async { await client.close() }

    public func head(key: String) async throws -> ObjectInfo? {
        let r = try await client.send(.init(method: "HEAD", key: key, operation: "HeadObject"), accept: [200, 404])
        if r.status == 404 { return nil }
        return ObjectInfo(key: key, size: UInt64(r.headers["content-length"] ?? "") ?? 0, etag: Self.etag(r))
    }

    public func delete(key: String) async throws {
        _ = try await client.send(.init(method: "DELETE", key: key, operation: "DeleteObject"), accept: [200, 204, 404])
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let pageSize { query.append(("max-keys", String(pageSize))) }
            if let token { query.append(("continuation-token", token)) }
            let r = try await client.send(.init(method: "GET", key: "", query: query, operation: "ListObjectsV2"))
            let xml = String(decoding: r.body, as: UTF8.self)
            for item in XML.all("Contents", in: xml) {
                guard let key = XML.first("Key", in: item) else { continue }
                let size = UInt64(XML.first("Size", in: item) ?? "") ?? 0
                let etag = (XML.first("ETag", in: item) ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                out.append(ObjectInfo(key: key, size: size, etag: etag))
            }
            token = XML.first("IsTruncated", in: xml) == "true" ? XML.first("NextContinuationToken", in: xml) : nil
        } while token != nil
        return out.sorted { $0.key < $1.key }
    }

    /// Unfinished multipart uploads under `prefix` older than `olderThanSeconds` are aborted.
    public func removeStaleTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int {
        let r = try await client.send(.init(method: "GET", key: "", query: [("uploads", ""), ("prefix", prefix)], operation: "ListMultipartUploads"))
        let xml = String(decoding: r.body, as: UTF8.self)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var removed = 0
        for upload in XML.all("Upload", in: xml) {
            guard let key = XML.first("Key", in: upload), let id = XML.first("UploadId", in: upload) else { continue }
            let started = XML.first("Initiated", in: upload).flatMap { formatter.date(from: $0) ?? ISO8601DateFormatter().date(from: $0) }
            guard let started, Date().timeIntervalSince(started) >= olderThanSeconds else { continue }
            _ = try await client.send(.init(method: "DELETE", key: key, query: [("uploadId", id)], operation: "AbortMultipartUpload"))
            removed += 1
        }
        return removed
    }

    /// Unfinished multipart uploads under `prefix` (for tests and `des check`).
    public func pendingUploads(prefix: String) async throws -> [String] {
        let r = try await client.send(.init(method: "GET", key: "", query: [("uploads", ""), ("prefix", prefix)], operation: "ListMultipartUploads"))
        return XML.all("Upload", in: String(decoding: r.body, as: UTF8.self)).compactMap { XML.first("Key", in: $0) }
    }

    /// Creates the bucket (tests; `des` expects it to exist). An existing bucket of ours is fine.
    public func createBucket() async throws {
        _ = try await client.send(.init(method: "PUT", key: "", operation: "CreateBucket"), accept: [200, 409])
    }

    static func etag(_ r: HTTPResponse) -> String {
        (r.headers["etag"] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }
}
