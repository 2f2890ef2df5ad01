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

        func headRead() {
            inFlight += 1
            pendingBytes = false
            record.sheddable.store(false, ordering: .relaxed)
        }

        func requestEnded() {
            guard case .reading = phase else { return }
            phase = .serving
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

        /// Every answer is sent and the request read whole: sheddable again, and timed.
        private func becameIdle() {
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
            let delay = reason == .idleTimeout ? owner.idleTimeout : owner.headerTimeout
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
            switch (reason, phase) {
            case (.headerTimeout, .reading), (.headerTimeout, .waiting), (.idleTimeout, .waiting):
                owner.closed(reason)
                owner.logger.debug("closing a connection", metadata: ["reason": "\(reason.rawValue)"])
                channel.close(mode: .all, promise: nil)
            default:
                break
            }
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
    }

    /// After the HTTP decoder: sees each request's head and end, and each response's end.
    final class PartsHandler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart
        let state: ConnectionState

        init(_ state: ConnectionState) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head: state.headRead()
            case .body: break
            case .end: state.requestEnded()
            }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) { state.responseEnded() }
            context.write(data, promise: promise)
        }
    }
}
