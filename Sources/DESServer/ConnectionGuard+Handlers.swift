import NIOCore
import NIOHTTPTypes

extension ConnectionGuard {
    /// What one connection is doing, on its event loop only: shared by its two handlers, the
    /// one before the HTTP decoder (which sees a request's first bytes) and the one after it
    /// (which sees a request's head and end, and a response's end).
    final class ConnectionState {
        enum Phase {
            /// No byte of a request since connecting or since the last response.
            case waiting
            /// A request's bytes are arriving.
            case reading
            /// Requests read whole, answers not all sent.
            case serving
        }

        let owner: ConnectionGuard
        let record: Connection
        let channel: any Channel
        var phase = Phase.waiting
        /// No request has been answered yet (the first request's header timeout runs from connecting).
        var fresh = true
        /// Requests whose head was read and whose answer has not ended.
        var inFlight = 0
        /// Bytes came while serving: the next request has begun.
        var pendingBytes = false
        /// While serving: the answer cannot be written, its client not reading it.
        var stalled = false
        var active = false
        private var timer: Scheduled<Void>?

        init(owner: ConnectionGuard, channel: any Channel) {
            self.owner = owner
            self.channel = channel
            self.record = owner.makeConnection(channel)
        }

        func activate() {
            guard !active else { return }
            active = true
            guard owner.admit(record) else {
                channel.close(mode: .all, promise: nil)
                return
            }
            schedule(.headerTimeout)
        }

        func deactivate() {
            cancelTimer()
            owner.remove(record)
        }

        func bytesArrived() {
            switch phase {
            case .waiting:
                phase = .reading
                record.since.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
                if !fresh { schedule(.headerTimeout) }  // a first request's timer runs from connecting
            case .serving:
                pendingBytes = true
            case .reading:
                break
            }
        }

        /// A request's head: it is in flight. Its connection stays sheddable until the request has
        /// arrived whole (a client trickling a body is as slow as one trickling a head).
        func headRead() {
            inFlight += 1
            pendingBytes = false
        }

        func requestEnded() {
            guard case .reading = phase else { return }
            phase = .serving
            record.sheddable.store(false, ordering: .relaxed)
            cancelTimer()
            // Answered before its body was read whole (413, 401, 404): idle now, not serving forever.
            if inFlight == 0 { becameIdle() }
        }

        func responseEnded() {
            inFlight = max(0, inFlight - 1)
            fresh = false
            guard inFlight == 0, case .serving = phase else { return }
            becameIdle()
        }

        /// While serving, the connection stopped (or started again) taking what is written to it.
        /// Stalled, it waits on its client as an idle one does: sheddable (since the stall began)
        /// and closed after the idle timeout, so a client that asks and never reads cannot hold a
        /// connection, and what its answer holds in memory, for good.
        func writabilityChanged(writable: Bool) {
            guard case .serving = phase else { return }
            if !writable && !stalled {
                stalled = true
                record.since.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
                record.sheddable.store(true, ordering: .relaxed)
                schedule(.sendStalled)
            } else if writable && stalled {
                stalled = false
                record.sheddable.store(false, ordering: .relaxed)
                cancelTimer()
            }
        }

        /// Every answer is sent and the request read whole: sheddable again, and timed.
        private func becameIdle() {
            stalled = false
            record.since.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
            record.sheddable.store(true, ordering: .relaxed)
            if pendingBytes {
                pendingBytes = false
                phase = .reading
                schedule(.headerTimeout)
            } else {
                phase = .waiting
                schedule(.idleTimeout)
            }
        }

        private func schedule(_ reason: CloseReason) {
            cancelTimer()  // on the event loop: a cancelled task never runs
            let delay = reason == .headerTimeout ? owner.headerTimeout : owner.idleTimeout
            timer = channel.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
                self.fired(reason)
            }
        }

        private func cancelTimer() {
            timer?.cancel()
            timer = nil
        }

        private func fired(_ reason: CloseReason) {
            guard active else { return }
            timer = nil
            // A timer that fired after its phase ended (a request began, the answer moved on) closes nothing.
            let due: Bool
            switch (reason, phase) {
            case (.headerTimeout, .reading), (.headerTimeout, .waiting), (.idleTimeout, .waiting): due = true
            case (.sendStalled, .serving): due = stalled
            default: due = false
            }
            guard due else { return }
            owner.closed(reason)
            owner.logger.debug("closing a connection", metadata: ["reason": "\(reason.rawValue)"])
            channel.close(mode: .all, promise: nil)
        }
    }

    /// First in a connection's pipeline: sees the bytes as they arrive (a request has begun),
    /// and when the connection opens and closes.
    final class BytesHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let state: ConnectionState

        init(_ state: ConnectionState) { self.state = state }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { state.activate() }
        }

        func channelActive(context: ChannelHandlerContext) {
            state.activate()
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.deactivate()
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            state.bytesArrived()
            context.fireChannelRead(data)
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            state.writabilityChanged(writable: context.channel.isWritable)
            context.fireChannelWritabilityChanged()
        }
    }

    /// After the HTTP decoder: sees each request's head and end, and each response's end.
    final class PartsHandler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart
        let state: ConnectionState

        init(_ state: ConnectionState) { self.state = state }

        /// A `CONNECT` was asked (never served: no route takes it). What follows it on the
        /// connection is a tunnel to the HTTP parser, which reads no further request: the
        /// connection is closed once its answer is out, instead of hanging until the idle timeout.
        private var closeAfterAnswer = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                if head.method == .connect { closeAfterAnswer = true }
                state.headRead()
            case .body: break
            case .end: state.requestEnded()
            }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            guard case .end = unwrapOutboundIn(data) else {
                context.write(data, promise: promise)
                return
            }
            state.responseEnded()
            guard closeAfterAnswer else {
                context.write(data, promise: promise)
                return
            }
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            written.futureResult.whenComplete { [channel = context.channel] _ in channel.close(mode: .all, promise: nil) }
            context.writeAndFlush(data, promise: written)
        }
    }
}
