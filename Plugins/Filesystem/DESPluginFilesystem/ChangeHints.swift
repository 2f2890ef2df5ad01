import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// inotify, where the kernel has it, as a hint that a root changed: a scanning service then
/// walks that root again soon instead of at its next `rescan_seconds`. Only a hint: the watches
/// cover the directories the last walk found files in (and each root), events can be lost (a full
/// queue, a directory made and filled between two walks), and the periodic walk stays the truth.
/// Off until ``start()``: a one-shot scan neither watches nor reads events.
final class ChangeHints: Sendable {
    private struct State {
        /// Watch descriptor → root index, and directory.
        var roots: [Int32: Int] = [:]
        var paths: [Int32: String] = [:]
        /// Directories watched, by root index.
        var watched: [Int: Set<String>] = [:]
        /// Roots with events since they were last taken.
        var changed: Set<Int> = []
        /// The inotify descriptor, once started (and where the kernel has inotify for us).
        var fd: Int32?
    }

    private let state = Mutex(State())
    /// The most directories watched in all (each watch costs kernel memory; the user's limit is
    /// `fs.inotify.max_user_watches`).
    static let maxWatches = 65_536

    /// Hints that are off.
    init() {}

    /// Turns hints on: an inotify descriptor and its reading thread (which lives as long as the
    /// process). Nothing where the kernel has no inotify for us; once only.
    func start() {
        let fd: Int32? = state.withLock { s in
            guard s.fd == nil else { return nil }
            let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard fd >= 0 else { return nil }
            s.fd = fd
            return fd
        }
        guard let fd else { return }
        let thread = Thread { [self] in readLoop(fd) }
        thread.name = "des-scan-inotify"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// Watches `directories` (absolute paths) for root `index`: files made, written, moved or
    /// removed. Nothing while hints are off.
    func watch(root index: Int, directories: Set<String>) {
        guard let fd = state.withLock({ $0.fd }) else { return }
        let fresh = state.withLock { s -> [String] in
            let known = s.watched[index, default: []]
            let total = s.watched.values.reduce(0) { $0 + $1.count }
            return Array(directories.subtracting(known).prefix(max(0, Self.maxWatches - total)))
        }
        // (No IN_ATTRIB: reading a file may move its atime, and the scan and the packer read.)
        let mask = UInt32(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF)
        var added: [(Int32, String)] = []
        for directory in fresh {
            let wd = inotify_add_watch(fd, directory, mask)
            if wd >= 0 { added.append((wd, directory)) }
        }
        state.withLock { s in
            for (wd, directory) in added {
                s.roots[wd] = index
                s.paths[wd] = directory
                s.watched[index, default: []].insert(directory)
            }
        }
    }

    /// Forgets the events of root `index` so far (its walk is about to begin).
    func take(root index: Int) {
        state.withLock { _ = $0.changed.remove(index) }
    }

    /// Whether hints are on.
    var isOn: Bool { state.withLock { $0.fd != nil } }

    /// Whether root `index` has had events since the last ``take(root:)``.
    func changed(root index: Int) -> Bool { state.withLock { $0.changed.contains(index) } }

    private func readLoop(_ fd: Int32) {
        let size = 64 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&poller, 1, 1_000)
            if ready < 0 && errno != EINTR { return }
            if ready <= 0 { continue }
            let n = read(fd, buffer, size)
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return  // closed
            }
            var offset = 0
            var hit: Set<Int> = []
            var gone: [Int32] = []
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                if event.mask & UInt32(IN_IGNORED) != 0 { gone.append(event.wd) }
                hit.insert(Int(event.wd))
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
            }
            state.withLock { s in
                for wd in hit { if let root = s.roots[Int32(wd)] { s.changed.insert(root) } }
                // A queue that overflowed says nothing of where: every root is hinted.
                if hit.contains(-1) { s.changed.formUnion(s.watched.keys) }
                for wd in gone {
                    if let root = s.roots.removeValue(forKey: wd), let path = s.paths.removeValue(forKey: wd) {
                        s.watched[root]?.remove(path)
                    }
                }
            }
        }
    }
}
