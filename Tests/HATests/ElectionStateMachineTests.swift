import HA
import Testing

/// The election's decisions with time given by the test: TTL 5 s, so a safety margin of 1 s,
/// renewals every 5/3 s, reads every 250 ms.
@Suite struct ElectionStateMachineTests {
    static let configuration = ElectionStateMachine.Configuration(name: "a", ttl: .seconds(5))
    typealias Action = ElectionStateMachine.Action

    static func ms(_ n: Int) -> Duration { .milliseconds(n) }

    /// A node that was granted lease 1 (sent at 0) and has published its member key.
    static func standby(view: ClusterView) -> ElectionStateMachine {
        var m = ElectionStateMachine(configuration: configuration, address: "10.0.0.1")
        #expect(m.nextAction(now: .zero) == .grantLease(ttl: .seconds(5)))
        m.leaseGranted(id: 1, ttl: .seconds(5), sentAt: .zero, now: ms(10))
        guard case .publishMember(let record, lease: 1) = m.nextAction(now: ms(10)) else {
            Issue.record("no publish")
            return m
        }
        #expect(record == MemberRecord(name: "a", role: "standby", inSync: false, lagBytes: 0, address: "10.0.0.1"))
        m.memberPublished(record, lease: 1, now: ms(20))
        #expect(m.nextAction(now: ms(20)) == .observe)
        m.observed(view, now: ms(30))
        #expect(m.nextAction(now: ms(30)) == .announce(.standby(leader: view.leader?.name, epoch: view.leader?.epoch)))
        return m
    }

    /// A node that won epoch 7 at 40 ms under lease 1 (last proven from 0: until 5 s).
    static func active() -> ElectionStateMachine {
        var m = standby(view: ClusterView())
        #expect(m.nextAction(now: ms(30)) == .campaign(lease: 1, syncRevision: 0))
        m.campaigned(.won(epoch: 7), lease: 1, now: ms(40))
        #expect(m.nextAction(now: ms(40)) == .announce(.active(epoch: 7)))
        guard case .publishMember(let record, lease: 1) = m.nextAction(now: ms(40)) else {
            Issue.record("no publish of the active role")
            return m
        }
        #expect(record.role == "active" && record.inSync)
        m.memberPublished(record, lease: 1, now: ms(50))
        return m
    }

    static let leaderB = LeaderInfo(name: "b", epoch: 5, lease: 99)

    @Test func aStandbyWithALeaderWaitsAndNeverCampaigns() {
        var m = Self.standby(view: ClusterView(leader: Self.leaderB))
        #expect(m.nextAction(now: Self.ms(30)) == .wait(until: Self.ms(280)))
        #expect(m.nextAction(now: Self.ms(280)) == .observe)
        #expect(m.activeEpoch(now: Self.ms(280)) == nil)
    }

    @Test func aRenewalSentWithoutAnswerFencesAtTheTTLLessTheMarginFromTheLastProvenSend() {
        var m = Self.active()
        #expect(m.activeEpoch(now: Self.ms(50)) == 7)
        // The renewal due at 5/3 s goes out and never comes back; its call is cut off and retried.
        #expect(m.nextAction(now: .seconds(5) / 3) == .renewLease(id: 1))
        m.callFailed(.renew, now: Self.ms(3990))
        #expect(m.activeEpoch(now: Self.ms(3999)) == 7)
        #expect(m.activeEpoch(now: Self.ms(4000)) == nil)
        #expect(m.nextAction(now: Self.ms(4000)) == .fence(
            .fenced(epoch: 7, reason: .leaseUnproven, activeUntil: Self.ms(4000)), lease: 1))
    }

    @Test func aLateAnswerProvesTheLeaseOnlyFromWhenItsRequestWasSent() {
        var m = Self.active()
        let sent = Duration.seconds(5) / 3
        #expect(m.nextAction(now: sent) == .renewLease(id: 1))
        // The process was stopped with the request in flight; etcd's answer is read at 7 s.
        m.leaseRenewed(id: 1, ttl: .seconds(5), sentAt: sent, now: .seconds(7))
        #expect(m.activeEpoch(now: .seconds(7)) == nil)
        #expect(m.nextAction(now: .seconds(7)) == .fence(
            .fenced(epoch: 7, reason: .leaseUnproven, activeUntil: sent + .seconds(4)), lease: 1))
    }

    @Test func aFreezeLongerThanTheTTLFencesBeforeAnythingElse() {
        var m = Self.active()
        #expect(m.nextAction(now: Self.ms(50)) == .wait(until: Self.ms(280)))
        #expect(m.nextAction(now: Self.ms(280)) == .observe)
        m.observed(ClusterView(leader: LeaderInfo(name: "a", epoch: 7, lease: 1)), now: Self.ms(290))
        #expect(m.nextAction(now: Self.ms(290)) == .wait(until: Self.ms(540)))
        // Frozen from 290 ms to 9 s: whatever etcd would say, the first step fences.
        #expect(m.nextAction(now: .seconds(9)) == .fence(
            .fenced(epoch: 7, reason: .paused(.seconds(9) - Self.ms(290)), activeUntil: .seconds(4)), lease: 1))
        // A renewal answer for the old lease changes nothing now.
        m.leaseRenewed(id: 1, ttl: .seconds(5), sentAt: .seconds(9), now: .seconds(9))
        #expect(m.activeEpoch(now: .seconds(9)) == nil)
        #expect(m.nextAction(now: .seconds(9)) == .wait(until: .seconds(9) + Self.ms(250)))
        // Released: a new lease, then a standby that leaves the next leadership to the others for 2 s.
        m.released(now: .seconds(9) + Self.ms(100))
        #expect(m.nextAction(now: .seconds(9) + Self.ms(100)) == .grantLease(ttl: .seconds(5)))
        m.leaseGranted(id: 2, ttl: .seconds(5), sentAt: .seconds(9) + Self.ms(100), now: .seconds(9) + Self.ms(110))
        guard case .publishMember(let record, lease: 2) = m.nextAction(now: .seconds(9) + Self.ms(110)) else {
            Issue.record("no publish")
            return
        }
        m.memberPublished(record, lease: 2, now: .seconds(9) + Self.ms(120))
        #expect(m.nextAction(now: .seconds(9) + Self.ms(120)) == .observe)
        m.observed(ClusterView(), now: .seconds(9) + Self.ms(130))
        #expect(m.nextAction(now: .seconds(9) + Self.ms(130)) == .announce(.standby(leader: nil, epoch: nil)))
        #expect(m.nextAction(now: .seconds(9) + Self.ms(130)) == .wait(until: .seconds(9) + Self.ms(380)))
        m.observed(ClusterView(), now: .seconds(11) + Self.ms(100))
        #expect(m.nextAction(now: .seconds(11) + Self.ms(100)) == .renewLease(id: 2))
        m.leaseRenewed(id: 2, ttl: .seconds(5), sentAt: .seconds(11) + Self.ms(100), now: .seconds(11) + Self.ms(110))
        #expect(m.nextAction(now: .seconds(11) + Self.ms(110)) == .campaign(lease: 2, syncRevision: 0))
    }

    @Test func etcdForgettingTheLeaseFences() {
        var m = Self.active()
        m.leaseLost(id: 1, now: Self.ms(100))
        #expect(m.activeEpoch(now: Self.ms(100)) == nil)
        #expect(m.nextAction(now: Self.ms(100)) == .fence(
            .fenced(epoch: 7, reason: .leaseLost, activeUntil: Self.ms(100)), lease: 1))
    }

    @Test func aLeaderKeyOfAnotherLeadershipFences() {
        var m = Self.active()
        m.observed(ClusterView(leader: Self.leaderB), now: Self.ms(100))
        #expect(m.nextAction(now: Self.ms(100)) == .fence(
            .fenced(epoch: 7, reason: .leadershipLost, activeUntil: Self.ms(100)), lease: 1))
    }

    @Test func theActiveResignsForASwitchoverToALiveMemberOnly() {
        let me = LeaderInfo(name: "a", epoch: 7, lease: 1)
        let b = MemberRecord(name: "b", role: "standby", inSync: false, lagBytes: 0, address: "")
        var m = Self.active()
        m.observed(ClusterView(leader: me, switchoverTarget: "c", members: ["b": b]), now: Self.ms(100))
        #expect(m.nextAction(now: Self.ms(100)) == .wait(until: Self.ms(350)))
        m.observed(ClusterView(leader: me, switchoverTarget: "b", members: ["b": b]), now: Self.ms(400))
        #expect(m.nextAction(now: Self.ms(400)) == .resign(.resigned(epoch: 7, reason: "switchover to b"), lease: 1))
        #expect(m.activeEpoch(now: Self.ms(400)) == nil)
    }

    @Test func duringASwitchoverOnlyItsTargetCampaignsAtOnce() {
        let b = MemberRecord(name: "b", role: "standby", inSync: false, lagBytes: 0, address: "")
        let a = MemberRecord(name: "a", role: "standby", inSync: false, lagBytes: 0, address: "")
        // "a" is not the target: it waits 2 s from when it first saw no leader.
        var other = Self.standby(view: ClusterView(switchoverTarget: "b", members: ["a": a, "b": b]))
        #expect(other.nextAction(now: Self.ms(30)) == .wait(until: Self.ms(280)))
        other.observed(ClusterView(switchoverTarget: "b", members: ["a": a, "b": b]), now: Self.ms(1000))
        #expect(other.nextAction(now: Self.ms(1000)) == .wait(until: Self.ms(1250)))
        other.observed(ClusterView(switchoverTarget: "b", members: ["a": a, "b": b]), now: Self.ms(2030))
        #expect(other.nextAction(now: Self.ms(2030)) == .renewLease(id: 1))
        other.leaseRenewed(id: 1, ttl: .seconds(5), sentAt: Self.ms(2030), now: Self.ms(2040))
        #expect(other.nextAction(now: Self.ms(2040)) == .campaign(lease: 1, syncRevision: 0))
        // The target campaigns at once.
        let target = ElectionStateMachine.Configuration(name: "b", ttl: .seconds(5))
        var m = ElectionStateMachine(configuration: target, address: "")
        _ = m.nextAction(now: .zero)
        m.leaseGranted(id: 3, ttl: .seconds(5), sentAt: .zero, now: .zero)
        guard case .publishMember(let record, lease: 3) = m.nextAction(now: .zero) else { return }
        m.memberPublished(record, lease: 3, now: .zero)
        #expect(m.nextAction(now: .zero) == .observe)
        m.observed(ClusterView(switchoverTarget: "b", members: ["a": a, "b": b]), now: .zero)
        #expect(m.nextAction(now: .zero) == .announce(.standby(leader: nil, epoch: nil)))
        #expect(m.nextAction(now: .zero) == .campaign(lease: 3, syncRevision: 0))
    }

    @Test func aCampaignWhoseAnswerWasLostIsFoundInTheLeaderKey() {
        var m = Self.standby(view: ClusterView())
        #expect(m.nextAction(now: Self.ms(30)) == .campaign(lease: 1, syncRevision: 0))
        m.callFailed(.campaign, now: Self.ms(500))
        m.observed(ClusterView(leader: LeaderInfo(name: "a", epoch: 12, lease: 1)), now: Self.ms(600))
        #expect(m.nextAction(now: Self.ms(600)) == .announce(.active(epoch: 12)))
        #expect(m.activeEpoch(now: Self.ms(600)) == 12)
    }

    @Test func aStandbyRenewsAnUnprovenLeaseBeforeItCampaigns() {
        var m = Self.standby(view: ClusterView(leader: Self.leaderB))
        // Renewals fail from 5/3 s on; the last retry at 4.4 s. The lease is unproven from 4 s.
        m.callFailed(.renew, now: Self.ms(4400))
        m.observed(ClusterView(), now: Self.ms(4500))
        #expect(m.nextAction(now: Self.ms(4500)) == .announce(.standby(leader: nil, epoch: nil)))
        #expect(m.nextAction(now: Self.ms(4500)) == .renewLease(id: 1))
        m.leaseRenewed(id: 1, ttl: .seconds(5), sentAt: Self.ms(4500), now: Self.ms(4510))
        #expect(m.nextAction(now: Self.ms(4510)) == .campaign(lease: 1, syncRevision: 0))
    }

    @Test func leavingResignsAnActiveAndRevokesAStandbysLease() {
        var m = Self.active()
        #expect(m.leave(now: Self.ms(100)) == .resign(.resigned(epoch: 7, reason: "shutting down"), lease: 1))
        var s = Self.standby(view: ClusterView(leader: Self.leaderB))
        #expect(s.leave(now: Self.ms(100)) == .revoke(lease: 1))
        var late = Self.active()
        #expect(late.leave(now: .seconds(6)) == .fence(
            .fenced(epoch: 7, reason: .paused(.seconds(6) - Self.ms(50)), activeUntil: .seconds(4)), lease: 1))
    }

    static func sync(leader: String, standby: String?, revision: Int64) -> SyncInfo {
        SyncInfo(record: SyncRecord(leader: leader, standby: standby), revision: revision)
    }

    @Test func aStandbyCampaignsOnlyIfTheSyncRecordNamesItOrThereIsNone() {
        // Named neither as the last active nor as the sync standby: it waits, and says why.
        var m = Self.standby(view: ClusterView(sync: Self.sync(leader: "b", standby: "c", revision: 9)))
        #expect(m.nextAction(now: Self.ms(30)) == .wait(until: Self.ms(280)))
        #expect(m.campaignRefusal?.contains("names b (last active) and c (sync standby)") == true, "\(m.campaignRefusal ?? "-")")
        m.observed(ClusterView(sync: Self.sync(leader: "b", standby: nil, revision: 10)), now: Self.ms(280))
        #expect(m.nextAction(now: Self.ms(280)) == .wait(until: Self.ms(530)))
        #expect(m.campaignRefusal?.contains("no sync standby") == true)
        #expect(m.activeEpoch(now: Self.ms(530)) == nil)
        // The sync standby campaigns, comparing the record's revision.
        m.observed(ClusterView(sync: Self.sync(leader: "b", standby: "a", revision: 11)), now: Self.ms(530))
        #expect(m.nextAction(now: Self.ms(530)) == .campaign(lease: 1, syncRevision: 11))
        #expect(m.campaignRefusal == nil)
        // So does the last active, with or without a sync standby.
        m.observed(ClusterView(sync: Self.sync(leader: "a", standby: nil, revision: 12)), now: Self.ms(540))
        #expect(m.nextAction(now: Self.ms(540)) == .campaign(lease: 1, syncRevision: 12))
        m.observed(ClusterView(sync: Self.sync(leader: "a", standby: "b", revision: 13)), now: Self.ms(550))
        #expect(m.nextAction(now: Self.ms(550)) == .campaign(lease: 1, syncRevision: 13))
        // And any node of a cluster without a sync record.
        m.observed(ClusterView(), now: Self.ms(560))
        #expect(m.nextAction(now: Self.ms(560)) == .campaign(lease: 1, syncRevision: 0))
        #expect(m.takeoverRefusal == nil)
    }

    @Test func aStandbyUnderAnActiveKnowsWhetherItMayTakeOverWithoutRefusingACampaign() {
        var m = Self.standby(view: ClusterView(leader: Self.leaderB, sync: Self.sync(leader: "b", standby: nil, revision: 6)))
        #expect(m.nextAction(now: Self.ms(30)) == .wait(until: Self.ms(280)))
        #expect(m.campaignRefusal == nil, "no campaign to refuse while b leads")
        #expect(m.takeoverRefusal?.contains("names b (last active) and no sync standby") == true)
        m.observed(ClusterView(leader: Self.leaderB, sync: Self.sync(leader: "b", standby: "a", revision: 7)), now: Self.ms(280))
        #expect(m.takeoverRefusal == nil)
    }

    @Test func aCampaignThatFailedWithNoLeaderReadsTheSyncRecordAgainBeforeAnythingElse() {
        var m = Self.standby(view: ClusterView(sync: Self.sync(leader: "b", standby: "a", revision: 11)))
        #expect(m.nextAction(now: Self.ms(30)) == .campaign(lease: 1, syncRevision: 11))
        // The record changed between the read and the campaign (the transaction's compare failed).
        m.campaigned(.lost(nil), lease: 1, now: Self.ms(40))
        #expect(m.nextAction(now: Self.ms(40)) == .observe)
        m.observed(ClusterView(sync: Self.sync(leader: "b", standby: nil, revision: 12)), now: Self.ms(50))
        #expect(m.nextAction(now: Self.ms(50)) == .wait(until: Self.ms(300)))
        #expect(m.campaignRefusal != nil)
    }

    @Test func aSwitchoverHandsOverToTheSyncStandbyOnly() {
        let me = LeaderInfo(name: "a", epoch: 7, lease: 1)
        let b = MemberRecord(name: "b", role: "standby", inSync: true, lagBytes: 0, address: "")
        let c = MemberRecord(name: "c", role: "standby", inSync: false, lagBytes: 0, address: "")
        var m = Self.active()
        let record = Self.sync(leader: "a", standby: "b", revision: 20)
        m.observed(ClusterView(leader: me, sync: record, switchoverTarget: "c", members: ["b": b, "c": c]), now: Self.ms(100))
        #expect(m.nextAction(now: Self.ms(100)) == .wait(until: Self.ms(350)))
        #expect(m.activeEpoch(now: Self.ms(100)) == 7)
        m.observed(ClusterView(leader: me, sync: record, switchoverTarget: "b", members: ["b": b, "c": c]), now: Self.ms(400))
        #expect(m.nextAction(now: Self.ms(400)) == .resign(.resigned(epoch: 7, reason: "switchover to b"), lease: 1))
    }

    @Test func theSyncRecordSaysWhichNodesMayTakeOverInTheStatus() throws {
        let a = MemberRecord(name: "a", role: "active", inSync: true, lagBytes: 0, address: "")
        let b = MemberRecord(name: "b", role: "standby", inSync: false, lagBytes: 0, address: "")
        let view = ClusterView(leader: LeaderInfo(name: "a", epoch: 3, lease: 1), sync: Self.sync(leader: "a", standby: nil, revision: 4),
                               members: ["a": a, "b": b])
        let status = view.status
        #expect(status.sync == SyncRecord(leader: "a", standby: nil))
        #expect(status.members.first { $0.name == "a" }?.notEligible == nil)
        #expect(status.members.first { $0.name == "b" }?.notEligible?.contains("no sync standby") == true)
        #expect(status.json.contains("\"sync\":{\"leader\":\"a\",\"standby\":null}"), "\(status.json)")
    }
}
