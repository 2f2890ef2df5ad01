import Foundation

extension SQLSourceConnector {
    /// Bounded counts (`SELECT COUNT(*) FROM (SELECT … LIMIT cap)`) of `statuses` and, when the
    /// table maps `created_at`, one `MIN(created_at)` over the pending rows read beside the
    /// database's own clock, so the age depends neither on this host's clock nor on the
    /// session's time zone.
    public func backlog(cap: Int, statuses: Set<SourceBacklog.Status>) async throws -> SourceBacklog? {
        let (s, d) = (try await tableShape(), dialect)
        let cap = max(1, cap)
        func status(_ label: String, named: Bool) -> (sql: String, binds: [SQLValue]) {
            ("\(s.status) = \(s.statusParam(d, 1))\(named ? " AND \(s.desName) IS NOT NULL" : "")\(s.andWhere)", [s.statusValue(label)])
        }
        let created = s.metadata.first { $0.name == "created_at" }
        let pending = status(s.statusPending, named: true)
        // Pending rows are counted whenever the oldest is asked for: NULL from MIN means none only if none are pending.
        let counted = created != nil ? statuses.union([.pending]) : statuses
        let predicates: [(SourceBacklog.Status, (sql: String, binds: [SQLValue]))] = [
            (.unnamed, s.unnamedPredicate(d)), (.pending, pending),
            (.claimed, status(s.statusClaimed, named: false)), (.failed, status(s.statusFailed, named: false)),
        ].filter { counted.contains($0.0) }
        return try await pool.withConnection { conn in
            try await conn.withSession { session in
                var backlog = SourceBacklog()
                for (name, predicate) in predicates {
                    let limited = d.limitedSelect("1 AS des_one", from: "\(s.table) WHERE \(predicate.sql)", limit: cap, bind: predicate.binds.count + 1)
                    if let bind = limited.bind {
                        let rows = try session.query("SELECT COUNT(*) FROM (\(limited.sql)) des_backlog", predicate.binds + [bind])
                        backlog.rows[name] = min(cap, Int(rows.first?[0].int ?? 0))
                    } else {  // the limit is the cursor's: count what it fetched
                        backlog.rows[name] = try session.query(limited.sql, predicate.binds, maxRows: limited.maxRows).count
                    }
                }
                if let created {
                    let kind = created.kind ?? .float
                    let rows = try session.query("SELECT MIN(\(created.quoted)), \(d.now(for: kind)) FROM \(s.table) WHERE \(pending.sql)", pending.binds)
                    let anyPending = (backlog.rows[.pending] ?? 0) > 0
                    if let row = rows.first, !row[0].isNull {
                        if let oldest = SQLTimeValue.seconds(row[0], kind: kind), let now = SQLTimeValue.seconds(row[1], kind: kind) {
                            backlog.oldestPendingSeconds = max(0, now - oldest)
                        } else {
                            backlog.oldestPendingSeconds = .nan
                            backlog.unreadableCreatedAt = String(row[0].text?.prefix(64) ?? "\(row[0])")
                        }
                    } else {
                        backlog.oldestPendingSeconds = anyPending ? .nan : 0  // pending rows, none with a creation time
                    }
                }
                backlog.rows = backlog.rows.filter { statuses.contains($0.key) }
                return backlog
            }
        }
    }
}

/// A time value as a database returns it, in seconds on one scale: numbers are taken as they are
/// (an epoch-seconds column), text as `YYYY-MM-DD[ T]HH:MM:SS[.fff][Z|±HH[:MM]]` (a time without
/// a zone is read as UTC, as DES writes such columns). Two values of one column read in one
/// statement compare correctly whatever the session's zone.
enum SQLTimeValue {
    static func seconds(_ value: SQLValue, kind: SQLColumnKind) -> Double? {
        switch value {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .text(let t):
            if let d = Double(t.trimmingCharacters(in: .whitespaces)) { return d }
            return parse(t)
        case .null, .blob: return nil
        }
    }

    /// Seconds since 1970 of `2026-12-06 09:00:00.123456+01` and its shorter forms; nil otherwise.
    static func parse(_ text: String) -> Double? {
        let b = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var n = 0
            for i in from..<(from + count) {
                guard (0x30...0x39).contains(b[i]) else { return nil }
                n = n * 10 + Int(b[i] - 0x30)
            }
            return n
        }
        guard b.count >= 19, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x20 || b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A,
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var scale = 0.1
            while i < b.count, (0x30...0x39).contains(b[i]) {
                fraction += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
        }
        while i < b.count, b[i] == 0x20 { i += 1 }
        var offset = 0
        if i < b.count {
            if b[i] == 0x5A, i + 1 == b.count {
                offset = 0
            } else if b[i] == 0x2B || b[i] == 0x2D, let h = number(i + 1, 2) {
                var m = 0
                var j = i + 3
                if j < b.count, b[j] == 0x3A { j += 1 }
                if j < b.count { guard let mm = number(j, 2), j + 2 == b.count else { return nil }; m = mm } else if j != b.count { return nil }
                offset = (b[i] == 0x2D ? -1 : 1) * (h * 3600 + m * 60)
            } else {
                return nil
            }
        }
        // Days from the civil date (Howard Hinnant's algorithm), so no calendar or zone is involved.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second - offset) + fraction
    }
}
