import Foundation

/// The outbox: events written in the transaction of the change they announce, read by followers
/// after a sequence number, pruned to the newest ``eventRetention``.
extension SQLMetadataStore {
    /// How many events the outbox keeps (at least 1,000): older ones are deleted as new ones
    /// are written, a batch every 1,024 events. A follower further behind than this starts
    /// again from what it can read (servers drop their caches).
    public var eventRetention: Int {
        get { eventRetentionStorage.load(ordering: .relaxed) }
        set { eventRetentionStorage.store(max(1_000, newValue), ordering: .relaxed) }
    }

    private static let eventColumns = "seq, kind, container_id, container_key, day, shard, des_name, source, row_id, created_at"

    /// Writes one `kind` event for each container of `ids` (as they are now), in `s`'s transaction.
    func emitContainerEvents(_ kind: StoreEvent.Kind, ids: [Int64], in s: any SQLSession) throws {
        guard !ids.isEmpty else { return }
        let list = ids.map(String.init).joined(separator: ", ")
        let written = try s.execute(
            """
            INSERT INTO des_events (kind, container_id, container_key, day, shard, created_at)
            SELECT \(p(1)), id, \(dialect.keyColumn), day, shard, \(dialect.now) FROM des_containers WHERE id IN (\(list)) ORDER BY id
            """, [.text(kind.rawValue)])
        try afterEmitting(written, in: s)
    }

    /// Writes a tombstone event for each of `names` (as its tombstone records it), in `s`'s
    /// transaction, in the tombstones' order: a statement for every 500.
    func emitTombstones(_ names: [String], in s: any SQLSession) throws {
        var written = 0
        for start in stride(from: 0, to: names.count, by: 500) {
            let slice = names[start..<min(names.count, start + 500)]
            let list = (2...(slice.count + 1)).map { p($0) }.joined(separator: ", ")
            written += try s.execute(
                """
                INSERT INTO des_events (kind, container_id, des_name, created_at)
                SELECT \(p(1)), container_id, des_name, \(dialect.now) FROM des_tombstones WHERE des_name IN (\(list)) ORDER BY seq
                """, [.text(StoreEvent.Kind.tombstone.rawValue)] + slice.map { .text($0) })
        }
        try afterEmitting(written, in: s)
    }

    /// Writes a retirement event for each retire intent of `source` among `rowIDs` (the bodies
    /// just retired), in `s`'s transaction, before the intents are cleared.
    func emitRetirements(source: String, rowIDs: [String], in s: any SQLSession) throws {
        guard !rowIDs.isEmpty else { return }
        let list = (3...(rowIDs.count + 2)).map { p($0) }.joined(separator: ", ")
        let written = try s.execute(
            """
            INSERT INTO des_events (kind, source, row_id, created_at)
            SELECT \(p(1)), source, row_id, \(dialect.now) FROM des_retire_intents WHERE source = \(p(2)) AND row_id IN (\(list))
            """, [.text(StoreEvent.Kind.sourceRetired.rawValue), .text(source)] + rowIDs.map { .text($0) })
        try afterEmitting(written, in: s)
    }

    /// Wakes the listeners (when the dialect can) and, each time the sequence passes a multiple
    /// of 1,024, prunes what is beyond the retention.
    private func afterEmitting(_ written: Int, in s: any SQLSession) throws {
        guard written > 0 else { return }
        if let notify = dialect.notifyEvents { _ = try s.query(notify, []) }
        guard let last = try s.query("SELECT MAX(seq) FROM des_events").first?[0].int else { return }
        if last / 1_024 != (last - Int64(written)) / 1_024 {
            try s.execute("DELETE FROM des_events WHERE seq <= \(p(1))", [.int(last - Int64(eventRetention))])
        }
    }

    public func events(afterSeq: Int64, limit: Int) async throws -> [StoreEvent] {
        let sql = "SELECT \(Self.eventColumns) FROM des_events WHERE seq > \(p(1)) ORDER BY seq LIMIT \(p(2))"
        let rows = try await session { s in try s.query(sql, [.int(afterSeq), .int(Int64(max(1, limit)))]) }
        return rows.compactMap { row in
            guard let seq = row[0].int, let kind = row[1].text.flatMap(StoreEvent.Kind.init(rawValue:)) else { return nil }
            return StoreEvent(
                seq: seq, kind: kind, containerID: row[2].int, containerKey: row[3].text, day: row[4].text, shard: row[5].int.map { Int($0) },
                name: row[6].text, source: row[7].text, rowID: row[8].text, createdAt: row[9].double ?? 0)
        }
    }

    public func eventBounds() async throws -> (first: Int64, last: Int64)? {
        let row = try await session { s in try s.query("SELECT MIN(seq), MAX(seq) FROM des_events").first }
        guard let row, let first = row[0].int, let last = row[1].int else { return nil }
        return (first, last)
    }

    public func waitForEvents(timeoutSeconds: Double) async throws -> Bool {
        guard let makeListener else {
            try await Task.sleep(nanoseconds: UInt64(max(0, timeoutSeconds) * 1e9))
            return false
        }
        let current = listener.withLock { $0 }
        let active: any SQLEventListener
        if let current {
            active = current
        } else {
            active = try await makeListener()
            listener.withLock { $0 = active }
        }
        do {
            return try await active.wait(timeoutSeconds: timeoutSeconds)
        } catch {
            // A lost connection: the next wait opens another (events are never lost: they are read from the outbox).
            listener.withLock { if $0 === active { $0 = nil } }
            await active.close()
            throw error
        }
    }

    /// Closes the listener, if one was opened.
    func closeListener() async {
        let open = listener.withLock { current -> (any SQLEventListener)? in
            let taken = current
            current = nil
            return taken
        }
        await open?.close()
    }
}
