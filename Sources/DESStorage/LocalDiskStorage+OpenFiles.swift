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

    init(fd: Int32, stamp: FileStamp, version: String) {
        (self.fd, self.stamp, self.version) = (fd, stamp, version)
    }

    deinit { _ = Glibc.close(fd) }
}

/// The container files that versioned range reads opened lately, by path: at most `capacity`
/// descriptors, the least recently used closed first.
///
/// What keeps a cached descriptor honest, on every read through it (``LocalDiskStorage``):
/// - its `fstat` must still say the stamp it was opened with (a rewrite in place changes size
///   or mtime) and a link count above zero (a container replaced by a rename, or deleted, is
///   unlinked: its descriptor is dropped and the path opened again);
/// - its version must be the one the read asks for; else the path is opened again, and the
///   version of the file now there decides, exactly as without the cache.
///
/// `put` and `delete` of a key drop its descriptor at once, so DES's own replacements and
/// deletes never keep a removed file's blocks allocated.
final class OpenObjectCache: Sendable {
    private struct Slot {
        var object: OpenObject
        var lastUse: UInt64
    }

    private struct State {
        var slots: [String: Slot] = [:]
        var clock: UInt64 = 0
    }

    /// How many descriptors are kept at most.
    let capacity: Int
    private let state = Mutex(State())

    /// A cache of at most `capacity` open files (0: none are kept).
    init(capacity: Int) { self.capacity = max(0, capacity) }

    /// The open file at `path`, if one is cached.
    func lookup(_ path: String) -> OpenObject? {
        state.withLock { state in
            guard var slot = state.slots[path] else { return nil }
            state.clock &+= 1
            slot.lastUse = state.clock
            state.slots[path] = slot
            return slot.object
        }
    }

    /// Keeps `object` as the open file at `path`, closing the least recently used one when full
    /// (its descriptor closes once no read holds it, outside the lock).
    func insert(_ path: String, _ object: OpenObject) {
        guard capacity > 0 else { return }
        let evicted: OpenObject? = state.withLock { state in
            state.clock &+= 1
            let previous = state.slots.updateValue(Slot(object: object, lastUse: state.clock), forKey: path)
            if previous != nil || state.slots.count <= capacity { return previous?.object }
            guard let oldest = state.slots.min(by: { $0.value.lastUse < $1.value.lastUse })?.key else { return nil }
            return state.slots.removeValue(forKey: oldest)?.object
        }
        withExtendedLifetime(evicted) {}
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
