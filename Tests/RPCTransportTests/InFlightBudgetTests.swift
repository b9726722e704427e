import NIOConcurrencyHelpers
@testable import RPCTransport
import Testing

/// The budget of call bytes in flight shared by every connection of a listener.
@Suite struct InFlightBudgetTests {
    @Test func connectionsHeldBackResumeWhenRepliesGiveBytesBack() {
        let budget = InFlightBudget(limit: 3 << 20)
        budget.take(1 << 20)
        budget.take(1 << 20)
        #expect(budget.isAvailable)
        budget.take(1 << 20)
        #expect(!budget.isAvailable)
        // A call already read is taken beyond the limit (it is in memory anyway).
        budget.take(1 << 20)
        #expect(budget.used == 4 << 20)
        let resumed = NIOLockedValueBox(0)
        budget.whenAvailable { resumed.withLockedValue { $0 += 1 } }
        budget.whenAvailable { resumed.withLockedValue { $0 += 1 } }
        budget.give(1 << 20)
        #expect(resumed.withLockedValue { $0 } == 0, "resumed while still at the limit")
        budget.give(1 << 20)
        #expect(resumed.withLockedValue { $0 } == 2)
        // Each waiter is resumed once.
        budget.give(1 << 20)
        #expect(resumed.withLockedValue { $0 } == 2)
        // With budget left, at once.
        budget.whenAvailable { resumed.withLockedValue { $0 += 1 } }
        #expect(resumed.withLockedValue { $0 } == 3)
        budget.give(1 << 20)
        #expect(budget.used == 0)
    }
}
