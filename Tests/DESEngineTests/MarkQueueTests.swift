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

    @Test("with promptRows 1 (a server database) a container is taken at once; those added while a batch runs form the next")
    func prompt() async {
        let q = MarkQueue(promptRows: 1)
        #expect(q.add(Self.container(id: 1, files: 2_000)))
        #expect(await q.next()?.map(\.record.id) == [1], "taken without waiting a second")
        _ = q.add(Self.container(id: 2, files: 2_000))
        _ = q.add(Self.container(id: 3, files: 2_000))
        #expect(await q.next()?.map(\.record.id) == [2, 3])
        #expect(await q.next() == nil)
        #expect(MarkQueue(promptRows: 0).promptRows == 1 && MarkQueue(promptRows: .max).promptRows == MarkQueue.batchRows)
        #expect(MarkQueue().promptRows == MarkQueue.batchRows)
    }
}
