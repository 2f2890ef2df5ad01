import CDESCrypto
import DESKit
import Foundation

/// What `des retire` needs from S3 bodies: each object's version (a HEAD), and DeleteObjects in
/// requests of up to 1,000 keys.
extension S3BodyFetcher {
    /// Keys one DeleteObjects request may name (S3's limit).
    static let deleteBatch = 1_000

    public func version(of location: BodyLocation) async throws -> BodyVersion? {
        let (client, key) = try target(location)
        let r = try await client.send(.init(method: "HEAD", key: key, operation: "HeadObject"), accept: [200, 404])
        if r.status == 404 { return nil }
        let size = r.headers["content-length"].flatMap { UInt64($0) } ?? 0
        return BodyVersion(size: size, tag: "etag " + S3Storage.etag(r))
    }

    public func delete(_ locations: [BodyLocation]) async throws -> [BodyLocation: String] {
        var failed: [BodyLocation: String] = [:]
        var byBucket: [String: [BodyLocation]] = [:]
        for location in locations {
            do {
                let (_, _) = try target(location)
                byBucket[location.bucket ?? config.bucket ?? "", default: []].append(location)
            } catch {
                failed[location] = "\(error)"
            }
        }
        for (bucket, all) in byBucket.sorted(by: { $0.key < $1.key }) {
            let client = try client(bucket: bucket)
            for start in stride(from: 0, to: all.count, by: Self.deleteBatch) {
                let batch = Array(all[start..<min(all.count, start + Self.deleteBatch)])
                let byKey = Dictionary(batch.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
                for (key, reason) in try await Self.deleteObjects(batch.map(\.key), client: client) {
                    if let location = byKey[key] { failed[location] = reason }
                }
            }
        }
        return failed
    }

    /// One DeleteObjects request (quiet: the answer names only the keys that failed, with why).
    static func deleteObjects(_ keys: [String], client: S3Client) async throws -> [(String, String)] {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>"
        for key in keys { xml += "<Object><Key>\(XML.escape(key).replacingOccurrences(of: "\r", with: "&#13;"))</Key></Object>" }
        xml += "</Delete>"
        let body = Array(xml.utf8)
        let r = try await client.send(
            .init(
                method: "POST", key: "", query: [("delete", "")],
                headers: ["content-type": "application/xml", "content-md5": Data(md5(body)).base64EncodedString()],
                body: .bytes(body), payloadHash: SigV4.hex(SigV4.sha256(body)), operation: "DeleteObjects"))
        let answer = String(decoding: r.body, as: UTF8.self)
        return XML.all("Error", in: answer).compactMap { error in
            guard let key = XML.first("Key", in: error) else { return nil }
            return (key, "S3 DeleteObjects: \(XML.first("Code", in: error) ?? "error") \(XML.first("Message", in: error) ?? "")")
        }
    }

    static func md5(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 16
        _ = bytes.withUnsafeBufferPointer { EVP_Digest($0.baseAddress, $0.count, &out, &length, EVP_md5(), nil) }
        return out
    }

    /// The client of a body's bucket and its key, or why the row cannot name a body.
    func target(_ location: BodyLocation) throws -> (S3Client, String) {
        guard let bucket = location.bucket ?? config.bucket else {
            throw DESKitError(.invalidData, "row has no bucket (map columns.s3_bucket, or set bodies.bucket)")
        }
        guard !location.key.isEmpty else { throw DESKitError(.invalidData, "row has an empty body key") }
        return (try client(bucket: bucket), location.key)
    }
}
