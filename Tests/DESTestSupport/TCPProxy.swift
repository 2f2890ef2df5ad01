#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A TCP forwarder on 127.0.0.1 in front of a test server, which a test can cut (every
/// connection through it is closed, new ones are accepted and closed at once: the server
/// looks down) and restore. Used to make a real server unreachable without stopping it, and,
/// with `recordingRequests`, to count the HTTP requests a client makes (exactly: each request's
/// line is recorded before it is forwarded).
public final class TCPProxy: @unchecked Sendable {
    /// One HTTP request seen on its way to the server.
    public struct Request: Sendable, Equatable {
        /// `GET`, `HEAD`, `PUT`…
        public var method: String
        /// The request target, query included.
        public var target: String
        /// Its `Range` header, if any.
        public var range: String?
    }

    /// The port to connect to instead of the server's.
    public let port: Int
    private let targetPort: Int
    private let listener: Int32
    private let lock = NSLock()
    private var live: Set<Int32> = []  // guarded by lock
    private var isCut = false  // guarded by lock
    private var stopped = false  // guarded by lock
    private let recording: Bool
    private var recorded: [Request] = []  // guarded by lock

    /// The requests forwarded so far (with `recordingRequests`).
    public var requests: [Request] { lock.withLock { recorded } }

    /// Forgets the requests recorded so far.
    public func clearRequests() { lock.withLock { recorded.removeAll() } }

    /// A proxy to `127.0.0.1:targetPort` on a free port; with `recordingRequests`, the HTTP
    /// requests sent through it are recorded (``requests``).
    public init(targetPort: Int, recordingRequests: Bool = false) throws {
        self.targetPort = targetPort
        self.recording = recordingRequests
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw ProxyError("bind/listen: \(errno)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        let t = Thread { [weak self] in self?.acceptLoop() }
        t.name = "tcp-proxy-accept"
        t.start()
    }

    deinit { stop() }

    /// Closes every connection through the proxy and refuses new ones until ``restore()``.
    public func cut() {
        // Under the lock: a descriptor in `live` is still open (its pump closes it only after
        // taking the lock to remove it), so this never shuts down a reused number.
        lock.withLock {
            isCut = true
            for fd in live { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Forwards new connections again.
    public func restore() { lock.withLock { isCut = false } }

    /// Stops listening and closes every connection.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            if stopped { return false }
            stopped = true
            for fd in live { shutdown(fd, Int32(SHUT_RDWR)) }
            return true
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return  // listener closed
            }
            let (cut, stopped) = lock.withLock { (isCut, self.stopped) }
            if cut || stopped {
                close(client)
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = Self.loopback(port: targetPort)
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if connected != 0 {
                close(upstream)
                close(client)
                continue
            }
            lock.withLock {
                live.insert(client)
                live.insert(upstream)
            }
            let done = DispatchGroup()
            for (from, to) in [(client, upstream), (upstream, client)] {
                done.enter()
                let parser = recording && from == client ? RequestParser { [weak self] in self?.record($0) } : nil
                let t = Thread {
                    Self.pump(from: from, to: to, parser: parser)
                    done.leave()
                }
                t.start()
            }
            let t = Thread { [weak self] in
                done.wait()
                if let self {
                    self.lock.withLock {
                        self.live.remove(client)
                        self.live.remove(upstream)
                        close(client)
                        close(upstream)
                    }
                } else {
                    close(client)
                    close(upstream)
                }
            }
            t.start()
        }
    }

    private func record(_ request: Request) { lock.withLock { recorded.append(request) } }

    private static func pump(from: Int32, to: Int32, parser: RequestParser? = nil) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            parser?.feed(buffer[..<n])
            var sent = 0
            while sent < n {
                let w = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if w <= 0 { break }
                sent += w
            }
            if sent < n { break }
        }
        shutdown(from, Int32(SHUT_RDWR))
        shutdown(to, Int32(SHUT_RDWR))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port).bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return a
    }
}

/// A failure to set the proxy up.
public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Finds a free loopback port: binds port 0, reads the port, releases it.
public struct TCPPortProbe {
    /// The port the kernel chose.
    public let port: Int

    /// Binds and releases.
    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket: \(errno)") }
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = 0
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { throw ProxyError("bind: \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: a.sin_port))
    }
}

/// Finds the requests in a client's byte stream: each head up to its blank line, then as many
/// body bytes as its `Content-Length` says (a chunked body ends the parsing of that connection).
final class RequestParser: @unchecked Sendable {
    private var pending: [UInt8] = []
    private var bodyLeft = 0
    private var lost = false
    private let onRequest: (TCPProxy.Request) -> Void

    init(_ onRequest: @escaping (TCPProxy.Request) -> Void) { self.onRequest = onRequest }

    func feed(_ bytes: ArraySlice<UInt8>) {
        guard !lost else { return }
        pending.append(contentsOf: bytes)
        while true {
            if bodyLeft > 0 {
                let skip = min(bodyLeft, pending.count)
                pending.removeFirst(skip)
                bodyLeft -= skip
                if bodyLeft > 0 { return }
            }
            guard let end = headEnd() else { return }
            let head = String(decoding: pending[..<end], as: UTF8.self)
            pending.removeFirst(end + 4)
            let lines = head.components(separatedBy: "\r\n")
            let parts = (lines.first ?? "").split(separator: " ")
            guard parts.count >= 2 else {
                lost = true
                return
            }
            var range: String?
            var length = 0
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if name == "range" { range = value }
                if name == "content-length" { length = Int(value) ?? 0 }
                if name == "transfer-encoding", value.lowercased().contains("chunked") { lost = true }
            }
            onRequest(TCPProxy.Request(method: String(parts[0]), target: String(parts[1]), range: range))
            if lost { return }
            bodyLeft = length
        }
    }

    private func headEnd() -> Int? {
        guard pending.count >= 4 else { return nil }
        for i in 0...(pending.count - 4) where pending[i] == 13 && pending[i + 1] == 10 && pending[i + 2] == 13 && pending[i + 3] == 10 {
            return i
        }
        return nil
    }
}
