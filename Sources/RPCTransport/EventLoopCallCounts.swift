import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Calls received on each event loop, and how many of them it answered itself rather than
/// handing them to a pool: whether connections spread over the loops (and so over the cores)
/// or one loop does all the work, and how much the calls answered without blocking save.
public final class EventLoopCallCounts: Sendable {
    /// One event loop's counts. A connection keeps its loop's: counting is two atomic adds.
    final class Slot: Sendable {
        let index: Int
        let received = Atomic<Int>(0)
        let handedOff = Atomic<Int>(0)
        init(index: Int) { self.index = index }
    }

    /// What one event loop did.
    public struct Loop: Hashable, Sendable {
        /// The loop, numbered in the order it first received a call.
        public var index: Int
        /// Calls routed on the loop.
        public var received: Int
        /// Of those, the calls that ran on a pool's thread.
        public var handedOff: Int
    }

    private let slots = NIOLockedValueBox<[ObjectIdentifier: Slot]>([:])

    public init() {}

    /// The counts of `loop` (made when it is first seen).
    func slot(for loop: any EventLoop) -> Slot {
        slots.withLockedValue { slots in
            let key = ObjectIdentifier(loop)
            if let s = slots[key] { return s }
            let s = Slot(index: slots.count)
            slots[key] = s
            return s
        }
    }

    /// Every loop that received a call, by index.
    public var loops: [Loop] {
        slots.withLockedValue { slots in
            slots.values.map {
                Loop(index: $0.index, received: $0.received.load(ordering: .relaxed), handedOff: $0.handedOff.load(ordering: .relaxed))
            }.sorted { $0.index < $1.index }
        }
    }
}
