import DESEngine
import DESKit
import Testing

/// The batches in which an uploaded container's rows are marked packed: no catalog, no store.
@Suite("Mark queue") struct MarkQueueTests {
    static func container(id: Int64, files: Int) -> PackerStateMachine.Container {
        var c = PackerStateMachine.Container(
            record: ContainerRecord(
                id: id, day: "20261206", shard: Int(id), key: "des/20261206/c\(id).des", state: .uploaded, holder: "h", token: 1,
                fileCount: files, bytes: 0, size: nil, etag: nil),
            lease: ShardLease(shard: Int(id), holder: LeaseHolder(pod: "p", instance: "i"), token: 1, expiresAt: 0, isNewGrant: false),
            now: 0)
        c.fileCount = files
        return c
    }

    @Test("one task at a time: the first container starts it, later ones join its batches; none is lost when it fails")
    func oneTask() async {
        let q = MarkQueue()
        #expect(q.add(Self.container(id: 1, files: q.promptRows - 10)), "the first container starts a task")
        #expect(!q.add(Self.container(id: 2, files: 10)), "a second waits for the running task")
        #expect(!q.restart(), "a task is running")
        let batch = await q.next()
        #expect(batch?.map(\.record.id) == [1, 2], "enough rows wait: both are taken at once")
        #expect(await q.next() == nil, "none wait: the task is done")
        #expect(q.add(Self.container(id: 3, files: 10)), "with no task running, the next container starts one")
        q.stopped()
        #expect(q.waiting == 1 && q.restart(), "after a failed task the waiting container is marked by a new one")
        #expect(!q.restart())
    }

    @Test("a batch holds at most batchRows rows (one container at least), oldest first")
    func cap() async {
        let q = MarkQueue()
        let big = MarkQueue.batchRows * 3 / 5
        _ = q.add(Self.container(id: 1, files: big))
        _ = q.add(Self.container(id: 2, files: big))
        _ = q.add(Self.container(id: 3, files: MarkQueue.batchRows * 2))
        #expect(await q.next()?.map(\.record.id) == [1])
        #expect(await q.next()?.map(\.record.id) == [2])
        #expect(await q.next()?.map(\.record.id) == [3], "a container over the cap goes alone")
        #expect(await q.next() == nil)
    }

    @Test("a flush takes small batches at once; a flush with nothing waiting and no task leaves no flag behind")
    func flush() async {
        let q = MarkQueue()
        q.flush()
        #expect(!q.isFlushing, "nothing to hurry")
        _ = q.add(Self.container(id: 1, files: 3))
        _ = q.add(Self.container(id: 2, files: 4))
        #expect(!q.isFlushing)
        q.flush()
        #expect(await q.next()?.map(\.record.id) == [1, 2])
        #expect(await q.next() == nil)
        #expect(!q.isFlushing, "the flush ends when the queue is empty")
    }

    @Test("with promptRows 1 (a server database) a container is taken at once, and two tasks mark: while both run, each takes half of those waiting")
    func prompt() async {
        let q = MarkQueue(promptRows: 1)
        #expect(q.concurrency == 2 && MarkQueue().concurrency == 1)
        #expect(q.add(Self.container(id: 1, files: 2_000)), "the first container starts a task")
        #expect(await q.next()?.map(\.record.id) == [1], "taken without waiting a second")
        #expect(q.add(Self.container(id: 2, files: 2_000)), "a second task starts while the first marks")
        for id in 3...5 { #expect(!q.add(Self.container(id: Int64(id), files: 2_000)), "no third task") }
        #expect(await q.next()?.map(\.record.id) == [2, 3], "both run: half of the four waiting")
        #expect(await q.next()?.map(\.record.id) == [4])
        #expect(await q.next()?.map(\.record.id) == [5])
        #expect(await q.next() == nil, "none wait: one task is done")
        #expect(q.add(Self.container(id: 6, files: 2_000)), "one task runs: another may start")
        #expect(await q.next()?.map(\.record.id) == [6])
        #expect(await q.next() == nil && q.waiting == 0)
        #expect(await q.next() == nil, "the second task is done too")
        #expect(q.add(Self.container(id: 7, files: 2_000)) && q.add(Self.container(id: 8, files: 2_000)), "none run: two may start")
        #expect(MarkQueue(promptRows: 0).promptRows == 1 && MarkQueue(promptRows: .max).promptRows == MarkQueue.batchRows)
        #expect(MarkQueue().promptRows == MarkQueue.batchRows)
    }

    @Test("two tasks: one failing leaves the waiting containers to the other; a restart only once none runs")
    func failureWithTwo() async {
        let q = MarkQueue(promptRows: 1)
        #expect(q.add(Self.container(id: 1, files: 10)) && q.add(Self.container(id: 2, files: 10)))
        #expect(!q.add(Self.container(id: 3, files: 10)))
        q.stopped()  // the first task failed
        #expect(!q.restart(), "the other task still runs, and takes what waits")
        #expect(await q.next()?.map(\.record.id) == [1, 2, 3], "one task runs: it takes every container waiting")
        #expect(await q.next() == nil)
        #expect(q.add(Self.container(id: 4, files: 10)), "none run")
        q.stopped()
        #expect(q.restart() && !q.restart(), "none run after the failure: one restart, once")
    }
}
