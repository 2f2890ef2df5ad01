import CDESCurl
#if canImport(Glibc)
import Glibc
#endif
import DESKit
import Foundation
import Synchronization

/// One HTTP exchange, as the S3 client asks for it.
struct HTTPRequest: Sendable {
    enum Body: Sendable {
        case none
        case bytes([UInt8])
        /// `length` bytes of the file at `path` from `offset`.
        case file(path: String, offset: UInt64, length: UInt64)
    }
    var method: String
    var url: String
    var headers: [String: String]
    var body: Body = .none
}

/// What came back.
struct HTTPResponse: Sendable {
    var status: Int
    /// Header names in lower case.
    var headers: [String: String]
    var body: [UInt8]
}

/// A failure below HTTP (no status): the server could not be reached, or the transfer broke or timed out.
struct TransportError: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var isTimeout: Bool
    var description: String { "HTTP transport error \(code): \(message)" }
}

/// libcurl easy handles, each on a thread of its own, so that requests run in parallel and each
/// handle keeps its connections alive for the next request (connection reuse).
final class CurlTransport: Sendable {
    struct Timeouts: Sendable {
        /// A request that moves no byte for this long (connecting included) is cut off
        /// (`CURLE_OPERATION_TIMEDOUT`); libcurl counts stalls in whole seconds.
        var stallSeconds: Double = 10
    }

    private final class Worker: @unchecked Sendable {
        let thread: DedicatedThread
        // Touched only on `thread`.
        var handle: UnsafeMutableRawPointer?
        init(index: Int) {
            thread = DedicatedThread(name: "des-s3-\(index)")
        }
    }

    private struct State {
        var free: [Int]
        var waiters: [CheckedContinuation<Int, Never>] = []
    }

    private let workers: [Worker]
    private let state: Mutex<State>
    let timeouts: Timeouts

    private static let globalInit: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    init(concurrency: Int, timeouts: Timeouts = Timeouts()) {
        _ = Self.globalInit
        let n = max(1, concurrency)
        workers = (0..<n).map { Worker(index: $0) }
        state = Mutex(State(free: Array(0..<n)))
        self.timeouts = timeouts
    }

    deinit {
        for w in workers { w.thread.stop() }
    }

    /// Frees every handle (their connections close); the transport is not used after.
    func close() async {
        for w in workers {
            _ = try? await w.thread.run {
                if let h = w.handle { curl_easy_cleanup(h) }
                w.handle = nil
            }
        }
    }

    private func acquire() async -> Int {
        if let i = state.withLock({ $0.free.popLast() }) { return i }
        return await withCheckedContinuation { cont in
            let ready = state.withLock { s -> Int? in
                if let i = s.free.popLast() { return i }
                s.waiters.append(cont)
                return nil
            }
            if let ready { cont.resume(returning: ready) }
        }
    }

    private func release(_ i: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Int, Never>? in
            if s.waiters.isEmpty {
                s.free.append(i)
                return nil
            }
            return s.waiters.removeFirst()
        }
        waiter?.resume(returning: i)
    }

    /// Sends `request` on a free handle; the response body is kept in memory, or streamed to
    /// `downloadTo` when given (then the returned body is empty).
    func send(_ request: HTTPRequest, downloadTo: String? = nil) async throws -> HTTPResponse {
        let i = await acquire()
        defer { release(i) }
        let worker = workers[i]
        let timeouts = self.timeouts
        return try await worker.thread.run {
            if worker.handle == nil { worker.handle = curl_easy_init() }
            guard let handle = worker.handle else { throw TransportError(code: -1, message: "curl_easy_init failed", isTimeout: false) }
            return try Self.perform(handle, request, downloadTo: downloadTo, timeouts: timeouts)
        }
    }

    /// The per-request state the C callbacks see.
    private final class Exchange {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        var sink: FileHandle?
        var sinkError: Error?
        var source: Int32 = -1
        var sourceOffset: UInt64 = 0
        var sourceRemaining: UInt64 = 0
        var bytes: [UInt8] = []
        var bytesSent = 0
    }

    private static func perform(_ curl: UnsafeMutableRawPointer, _ r: HTTPRequest, downloadTo: String?, timeouts: Timeouts) throws -> HTTPResponse {
        curl_easy_reset(curl)
        let exchange = Exchange()
        if let downloadTo {
            guard FileManager.default.createFile(atPath: downloadTo, contents: nil), let h = FileHandle(forWritingAtPath: downloadTo) else {
                throw DESKitError(.storage, "cannot create '\(downloadTo)'")
            }
            exchange.sink = h
        }
        defer {
            try? exchange.sink?.close()
            if exchange.source >= 0 { Glibc.close(exchange.source) }
        }
        let box = Unmanaged.passUnretained(exchange).toOpaque()
        _ = cdes_curl_set_string(curl, CURLOPT_URL, r.url)
        _ = cdes_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        _ = cdes_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int((timeouts.stallSeconds * 1000).rounded(.up))))
        _ = cdes_curl_set_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = cdes_curl_set_long(curl, CURLOPT_LOW_SPEED_TIME, max(1, Int(timeouts.stallSeconds.rounded(.up))))
        _ = cdes_curl_set_long(curl, CURLOPT_TCP_KEEPALIVE, 1)
        if r.method == "HEAD" {
            _ = cdes_curl_set_long(curl, CURLOPT_NOBODY, 1)
        } else if r.method != "GET" {
            _ = cdes_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, r.method)
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in r.headers.sorted(by: { $0.key < $1.key }) { list = curl_slist_append(list, "\(name): \(value)") }
        list = curl_slist_append(list, "Expect:")  // no 100-continue round trip before a body
        defer { curl_slist_free_all(list) }
        _ = cdes_curl_set_pointer(curl, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list))
        switch r.body {
        case .none:
            if r.method == "PUT" || r.method == "POST" {
                _ = cdes_curl_set_long(curl, CURLOPT_UPLOAD, 1)
                _ = cdes_curl_set_offset(curl, CURLOPT_INFILESIZE_LARGE, 0)
                _ = cdes_curl_set_reader(curl, readBytes, box)
            }
        case .bytes(let b):
            exchange.bytes = b
            _ = cdes_curl_set_long(curl, CURLOPT_UPLOAD, 1)
            _ = cdes_curl_set_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(b.count))
            _ = cdes_curl_set_reader(curl, readBytes, box)
        case .file(let path, let offset, let length):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw DESKitError(.storage, "cannot open '\(path)' to upload it") }
            exchange.source = fd
            exchange.sourceOffset = offset
            exchange.sourceRemaining = length
            _ = cdes_curl_set_long(curl, CURLOPT_UPLOAD, 1)
            _ = cdes_curl_set_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(length))
            _ = cdes_curl_set_reader(curl, readFile, box)
        }
        _ = cdes_curl_set_writer(curl, writeBody, box)
        _ = cdes_curl_set_header_reader(curl, readHeader, box)
        let rc = curl_easy_perform(curl)
        if let error = exchange.sinkError { throw error }
        guard rc == CURLE_OK else {
            let message = String(cString: curl_easy_strerror(rc))
            throw TransportError(code: Int32(rc.rawValue), message: message, isTimeout: rc == CURLE_OPERATION_TIMEDOUT)
        }
        var status = 0
        _ = cdes_curl_info_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: exchange.headers, body: exchange.body)
    }

    private static let writeBody: cdes_curl_data_fn = { data, size, count, user in
        guard let data, let user else { return 0 }
        let exchange = Unmanaged<Exchange>.fromOpaque(user).takeUnretainedValue()
        let n = size * count
        let buffer = UnsafeRawBufferPointer(start: data, count: n)
        if let sink = exchange.sink {
            do { try sink.write(contentsOf: Data(buffer)) } catch {
                exchange.sinkError = error
                return 0
            }
        } else {
            exchange.body.append(contentsOf: buffer)
        }
        return n
    }

    private static let readHeader: cdes_curl_data_fn = { data, size, count, user in
        guard let data, let user else { return 0 }
        let exchange = Unmanaged<Exchange>.fromOpaque(user).takeUnretainedValue()
        let n = size * count
        let line = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
        if line.hasPrefix("HTTP/") { exchange.headers = [:] }  // a new response (after a redirect or 100)
        if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            exchange.headers[name] = value
        }
        return n
    }

    private static let readBytes: cdes_curl_data_fn = { buffer, size, count, user in
        guard let buffer, let user else { return 0 }
        let exchange = Unmanaged<Exchange>.fromOpaque(user).takeUnretainedValue()
        let n = min(size * count, exchange.bytes.count - exchange.bytesSent)
        if n > 0 {
            exchange.bytes.withUnsafeBytes { src in
                if let base = src.baseAddress {
                    UnsafeMutableRawPointer(buffer).copyMemory(from: base + exchange.bytesSent, byteCount: n)
                }
            }
            exchange.bytesSent += n
        }
        return n
    }

    private static let readFile: cdes_curl_data_fn = { buffer, size, count, user in
        guard let buffer, let user else { return 0 }
        let exchange = Unmanaged<Exchange>.fromOpaque(user).takeUnretainedValue()
        let want = Int(min(UInt64(size * count), exchange.sourceRemaining))
        if want == 0 { return 0 }
        let got = pread(exchange.source, buffer, want, off_t(exchange.sourceOffset))
        guard got > 0 else { return Int(CURL_READFUNC_ABORT) }
        exchange.sourceOffset += UInt64(got)
        exchange.sourceRemaining -= UInt64(got)
        return got
    }
}

