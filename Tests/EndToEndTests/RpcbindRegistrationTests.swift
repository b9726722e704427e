import Foundation
import SwiftNFSTesting
import Testing

/// With a system rpcbind holding port 111, `--register-rpcbind` registers NFS and MOUNT with
/// it (portmap SET over loopback) and removes them at shutdown. The test runs the real
/// Debian rpcbind and the server in a network namespace of their own, so port 111 on the
/// host is untouched.
@Suite("Registration with a system rpcbind")
struct RpcbindRegistrationTests {
    @Test("--register-rpcbind registers NFS v3 and MOUNT v1/v3 with rpcbind and unregisters at shutdown")
    func registersAndUnregisters() async throws {
        let binary = try Binaries.swiftnfsd().path
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-rpcbind-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/export", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let script = """
            set -u
            ip link set lo up
            mkdir -p \(root)/run && mount -t tmpfs tmpfs /run 2>/dev/null || true
            rpcbind -f -w & RPCBIND=$!
            for i in $(seq 50); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
            \(binary) serve --export \(root)/export --listen 127.0.0.1 --nfs-port 2049 --portmap-port 0 \\
                --register-rpcbind --state-dir \(root)/state > \(root)/server.log 2>&1 & SERVER=$!
            # "serving" is logged once every registration is done (NFS answers before that).
            for i in $(seq 100); do grep -q '] serving' \(root)/server.log 2>/dev/null && break; sleep 0.1; done
            echo "--- while serving"
            rpcinfo -p 127.0.0.1
            rpcinfo -t 127.0.0.1 100005 3
            kill -TERM $SERVER; wait $SERVER
            echo "--- after shutdown"
            rpcinfo -p 127.0.0.1
            kill $RPCBIND
            """
        let result = try await Tools.run("unshare", ["--net", "--mount", "bash", "-c", script], timeout: .seconds(60))
        let output = result.stdout
        let parts = output.components(separatedBy: "--- after shutdown")
        try #require(parts.count == 2, "the script did not finish: \(result)")
        let serving = parts[0], after = parts[1]
        for line in ["100003    3   tcp   2049", "100003    3   udp   2049", "100005    1   tcp   2049",
                     "100005    3   tcp   2049", "100005    3   udp   2049"] {
            #expect(serving.contains(line), "rpcbind lists \(line): \(serving)")
        }
        #expect(serving.contains("program 100005 version 3 ready and waiting"))
        #expect(!after.contains("100003") && !after.contains("100005"), "unregistered at shutdown: \(after)")
        #expect(after.contains("100000"), "rpcbind itself still answers")
    }
}
