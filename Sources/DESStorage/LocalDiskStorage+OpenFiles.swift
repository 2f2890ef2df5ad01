import DESFormat
import DESKit
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A container file kept open for versioned range reads (a server reading one file after
/// another from the same containers): its descriptor and the stamp it had when opened.
///
/// Shared by the reads that use it; the descriptor is closed when the last of them and the
/// cache have let go of it, so a read never races a close (or a descriptor number reused).
final class OpenObject: Sendable {
    /// The open descriptor (read-only).
    let fd: Int32
    /// Its stamp when opened, and the version string made of it (``LocalDiskStorage/etag(of:)``).
    let stamp: FileStamp
    /// The version the file had when it was opened.
    let version: String
    /// When (monotonic ns) its path was last seen to lead to it, and when a read last used it.
    let pathCheckedAt: Atomic<UInt64>
    let usedAt: Atomic<UInt64>

    init(fd: Int32, stamp: FileStamp, version: String, now: UInt64) {
        (self.fd, self.stamp, self.version) = (fd, stamp, version)
        pathCheckedAt = Atomic(now)
        usedAt = Atomic(now)
    }

    deinit { _ = Glibc.close(fd) }

    /// Whether the file is still linked and unchanged since it was opened (its own `fstat`).
    var unchanged: Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && st.st_nlink > 0 && FileStamp(st) == stamp
    }

    /// Whether `path` leads to this very file now (a symbolic link pointed elsewhere, or a
    /// name removed while a link to the file stays, do not change the file itself).
    func isAt(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && UInt64(st.st_dev) == stamp.device && UInt64(st.st_ino) == stamp.inode
    }
}

/// Monotonic nanoseconds.
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// The container files that versioned range reads opened lately, by path: at most `capacity`
/// descriptors, the least recently used closed first.
///
/// What keeps a cached descriptor honest:
/// - on every read through it (``LocalDiskStorage``), its `fstat` must still say the stamp it was
///   opened with (a rewrite in place changes size, mtime or ctime) and a link count above zero (a
///   container replaced by a rename, or deleted, is unlinked), and its version must be the one the
///   read asks for; else the path is opened again, and the file now there decides, exactly as
///   without the cache;
/// - at most ``pathCheckNanos`` after its path was last seen to lead to it, the path is looked at
///   again (`stat`): a container reached through a symbolic link that now points elsewhere, or a
///   name removed while another link keeps the file, is dropped;
/// - a sweep every second, while any descriptor is kept, closes those whose file was deleted or
///   replaced, whose path leads elsewhere, or that no read used for ``idleNanos``: a server
///   never keeps a deleted (or erased) container's blocks for longer than that, read or not.
///
/// `put` and `delete` of a key drop its descriptor at once.
final class OpenObjectCache: Sendable {
    private struct Slot {
        var object: OpenObject
        var lastUse: UInt64
    }

    private struct State {
        var slots: [String: Slot] = [:]
        var clock: UInt64 = 0
        var sweeping = false
    }

    /// How many descriptors are kept at most.
    let capacity: Int
    private let state = Mutex(State())
    /// How long a path is believed to lead to its open file before it is looked at again.
    static let pathCheckNanos: UInt64 = 1_000_000_000
    /// How long a descriptor no read uses stays open.
    static let idleNanos: UInt64 = 30_000_000_000
    /// How often the sweep runs while descriptors are kept.
    static let sweepInterval: Duration = .seconds(1)

    /// A cache of at most `capacity` open files (0: none are kept).
    init(capacity: Int) { self.capacity = max(0, capacity) }

    /// The open file at `path`, if one is cached, still unchanged and (as of at most
    /// ``pathCheckNanos`` ago) still the file at `path`; one that is not is dropped.
    func lookup(_ path: String, now: UInt64) -> OpenObject? {
        let found: OpenObject? = state.withLock { state in
            guard var slot = state.slots[path] else { return nil }
            state.clock &+= 1
            slot.lastUse = state.clock
            state.slots[path] = slot
            return slot.object
        }
        guard let found else { return nil }
        if now &- found.pathCheckedAt.load(ordering: .relaxed) > Self.pathCheckNanos {
            guard found.isAt(path) else {
                remove(path, ifSame: found)
                return nil
            }
            found.pathCheckedAt.store(now, ordering: .relaxed)
        }
        found.usedAt.store(now, ordering: .relaxed)
        return found
    }

    /// Keeps `object` as the open file at `path`, closing the least recently used one when full
    /// (its descriptor closes once no read holds it, outside the lock); starts the sweep.
    func insert(_ path: String, _ object: OpenObject) {
        guard capacity > 0 else { return }
        let (evicted, startSweep): (OpenObject?, Bool) = state.withLock { state in
            state.clock &+= 1
            let previous = state.slots.updateValue(Slot(object: object, lastUse: state.clock), forKey: path)
            let start = !state.sweeping
            state.sweeping = true
            if previous != nil || state.slots.count <= capacity { return (previous?.object, start) }
            guard let oldest = state.slots.min(by: { $0.value.lastUse < $1.value.lastUse })?.key else { return (nil, start) }
            return (state.slots.removeValue(forKey: oldest)?.object, start)
        }
        withExtendedLifetime(evicted) {}
        if startSweep {
            Task.detached { [weak self] in
                while true {
                    try? await Task.sleep(for: Self.sweepInterval)
                    guard let self, self.sweep(now: monotonicNanos()) else { return }
                }
            }
        }
    }

    /// Closes the descriptors whose file was deleted or changed, whose path leads elsewhere, or
    /// that were not used for ``idleNanos``. False, and the sweep ends, when none is left.
    func sweep(now: UInt64) -> Bool {
        let kept = state.withLock { $0.slots.map { ($0.key, $0.value.object) } }
        for (path, object) in kept {
            let idle = now &- object.usedAt.load(ordering: .relaxed) > Self.idleNanos
            if idle || !object.unchanged || !object.isAt(path) { remove(path, ifSame: object) }
        }
        return state.withLock { state in
            if state.slots.isEmpty { state.sweeping = false }
            return state.sweeping
        }
    }

    /// Forgets the open file at `path` (only if it is still `object`, when given).
    func remove(_ path: String, ifSame object: OpenObject? = nil) {
        let removed: OpenObject? = state.withLock { state in
            guard let slot = state.slots[path] else { return nil }
            if let object, slot.object !== object { return nil }
            return state.slots.removeValue(forKey: path)?.object
        }
        withExtendedLifetime(removed) {}
    }

    /// How many files are open in the cache.
    var count: Int { state.withLock { $0.slots.count } }
}
