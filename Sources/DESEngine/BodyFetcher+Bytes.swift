import DESFormat
import DESKit
import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension BodyFetcher {
    /// The body's bytes as the packer reads them: through the opener the fetcher gives (which
    /// confines the path to the body root, and for a filesystem source checks it is still the
    /// scanned file), else from the fetched file. Used by `des retire` and `des check`.
    public func bytes(of location: BodyLocation) async throws -> [UInt8] {
        let body = try await fetch(location)
        defer { if body.isTemporary { try? FileManager.default.removeItem(atPath: body.path) } }
        if let open = body.stampedOpener {
            let fd = try open().descriptor
            defer { _ = Glibc.close(fd) }
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { readBlocking(fd, $0.baseAddress.unsafelyUnwrapped, $0.count) }
                if n < 0 { throw DESKitError(.storage, "cannot read body '\(body.path)': \(String(cString: strerror(errno)))") }
                if n == 0 { break }
                out += chunk[0..<n]
            }
            return out
        }
        guard let data = FileManager.default.contents(atPath: body.path) else {
            throw DESKitError(.notFound, "no such file '\(body.path)'")
        }
        return [UInt8](data)
    }
}
