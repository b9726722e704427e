import NFS3
import NIOCore
import Testing
import XDR

// MARK: - Fixtures

private let fileHandle = NFS3FileHandle([0x01, 0x00, 0xfe, 0x42, 0x13, 0x37, 0xbe, 0xef, 0x99])
private let directoryHandle = NFS3FileHandle((0..<32).map { UInt8($0 * 7 & 0xff) })
private let otherDirectoryHandle = NFS3FileHandle([0xaa, 0xbb, 0xcc])

private let fileAttributes = NFS3FileAttributes(
    type: .regular, mode: 0o100644, nlink: 3, uid: 1000, gid: 100, size: 0x1_2345_6789, used: 0x1_2346_0000,
    rdev: NFS3SpecData(major: 0, minor: 0), fsid: 0xdead_beef_0000_0001, fileid: 0x0102_0304_0506_0708,
    atime: NFS3Time(seconds: 1_700_000_000, nanoseconds: 123_456_789),
    mtime: NFS3Time(seconds: 1_700_000_100, nanoseconds: 999_999_999),
    ctime: NFS3Time(seconds: 1_700_000_200, nanoseconds: 1))

private let directoryAttributes = NFS3FileAttributes(
    type: .directory, mode: 0o40755, nlink: 7, uid: 0, gid: 0, size: 4096, used: 8192,
    rdev: NFS3SpecData(major: 8, minor: 1), fsid: 42, fileid: 2,
    atime: NFS3Time(seconds: 10, nanoseconds: 20), mtime: NFS3Time(seconds: 30, nanoseconds: 40),
    ctime: NFS3Time(seconds: 50, nanoseconds: 60))

private let wcc = NFS3WCCData(
    before: NFS3WCCAttributes(size: 4096, mtime: NFS3Time(seconds: 29, nanoseconds: 1),
                              ctime: NFS3Time(seconds: 49, nanoseconds: 2)),
    after: directoryAttributes)
private let wccAfterOnly = NFS3WCCData(before: nil, after: fileAttributes)
private let wccEmpty = NFS3WCCData()

private let setAttributes = NFS3SetAttributes(
    mode: 0o600, uid: 1001, gid: nil, size: 77, atime: .serverTime,
    mtime: .clientTime(NFS3Time(seconds: 1_234_567_890, nanoseconds: 500)))
private let setAttributesAll = NFS3SetAttributes(
    mode: 0o4755, uid: 0, gid: 0, size: 0, atime: .clientTime(NFS3Time(seconds: 1, nanoseconds: 2)), mtime: .dontChange)

private let dirOp = NFS3DirOpArgs(directory: directoryHandle, name: Array("hello.txt".utf8))
private let otherDirOp = NFS3DirOpArgs(directory: otherDirectoryHandle, name: Array("a".utf8) + [0xff, 0xc3, 0x28])

// MARK: - Helpers

/// Writes `value`, checks the reported size, reads it back and checks the buffer is consumed.
private func roundTrip<T>(_ value: T, _ write: (inout ByteBuffer, T) -> Int,
                          _ read: (inout ByteBuffer) throws -> T) throws -> T {
    var b = ByteBuffer()
    let written = write(&b, value)
    #expect(written == b.readableBytes)
    #expect(written % 4 == 0)
    let back = try read(&b)
    try b.expectXDREnd()
    return back
}

private func same<O: Equatable, F: Equatable>(_ a: NFS3Result<O, F>, _ b: NFS3Result<O, F>) -> Bool {
    switch (a, b) {
    case (.okay(let x), .okay(let y)): return x == y
    case (.fail(let s1, let x), .fail(let s2, let y)): return s1 == s2 && x == y
    default: return false
    }
}

/// Every proper prefix of the encoding must fail to decode with an XDRError.
private func expectEveryPrefixThrows<T>(_ value: T, _ write: (inout ByteBuffer, T) -> Int,
                                        _ read: (inout ByteBuffer) throws -> T) {
    var full = ByteBuffer()
    let n = write(&full, value)
    for length in 0..<n {
        var prefix = full.getSlice(at: 0, length: length)!
        #expect(throws: XDRError.self, "prefix of \(length)/\(n) bytes") { _ = try read(&prefix) }
    }
}

// MARK: - Round trips

@Suite struct NFS3RoundtripTests {
    @Test(arguments: [NFS3Time(seconds: 1_600_000_000, nanoseconds: 42), nil])
    func setattr(guardCtime: NFS3Time?) throws {
        let call = NFS3SetattrCall(object: fileHandle, newAttributes: setAttributes, guardCtime: guardCtime)
        #expect(try roundTrip(call, { $0.writeNFS3SetattrCall($1) }, { try $0.readNFS3SetattrCall() }) == call)
        for result: NFS3Result<NFS3WCCData, NFS3WCCData> in [.okay(wcc), .fail(.notSync, wccAfterOnly), .fail(.perm, wccEmpty)] {
            let back = try roundTrip(NFS3SetattrReply(result: result), { $0.writeNFS3SetattrReply($1) },
                                     { try $0.readNFS3SetattrReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func lookup() throws {
        let call = NFS3LookupCall(what: otherDirOp)
        #expect(try roundTrip(call, { $0.writeNFS3LookupCall($1) }, { try $0.readNFS3LookupCall() }) == call)
        let results: [NFS3Result<NFS3LookupOkay, NFS3FileAttributes?>] = [
            .okay(NFS3LookupOkay(object: fileHandle, objectAttributes: fileAttributes, directoryAttributes: directoryAttributes)),
            .okay(NFS3LookupOkay(object: fileHandle, objectAttributes: nil, directoryAttributes: directoryAttributes)),
            .fail(.noent, directoryAttributes),
            .fail(.stale, nil),
        ]
        for result in results {
            let back = try roundTrip(NFS3LookupReply(result: result), { $0.writeNFS3LookupReply($1) },
                                     { try $0.readNFS3LookupReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func access() throws {
        let asked = NFS3AccessMask.read | NFS3AccessMask.lookup | NFS3AccessMask.modify | NFS3AccessMask.extend
            | NFS3AccessMask.delete | NFS3AccessMask.execute
        #expect(asked == 0x3f && asked == NFS3AccessMask.all)
        let call = NFS3AccessCall(object: directoryHandle, access: asked)
        #expect(try roundTrip(call, { $0.writeNFS3AccessCall($1) }, { try $0.readNFS3AccessCall() }) == call)
        // Wire layout: handle length, handle, mask.
        var b = ByteBuffer()
        b.writeNFS3AccessCall(NFS3AccessCall(object: NFS3FileHandle([1, 2, 3, 4, 5]), access: NFS3AccessMask.delete))
        #expect(Array(b.readableBytesView) == [0, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0x10])
        let results: [NFS3Result<NFS3AccessOkay, NFS3FileAttributes?>] = [
            .okay(NFS3AccessOkay(attributes: directoryAttributes, access: NFS3AccessMask.read | NFS3AccessMask.lookup)),
            .fail(.acces, fileAttributes),
        ]
        for result in results {
            let back = try roundTrip(NFS3AccessReply(result: result), { $0.writeNFS3AccessReply($1) },
                                     { try $0.readNFS3AccessReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func readlink() throws {
        let call = NFS3ReadlinkCall(symlink: fileHandle)
        #expect(try roundTrip(call, { $0.writeNFS3ReadlinkCall($1) }, { try $0.readNFS3ReadlinkCall() }) == call)
        let results: [NFS3Result<NFS3ReadlinkOkay, NFS3FileAttributes?>] = [
            .okay(NFS3ReadlinkOkay(attributes: fileAttributes, path: Array("../some/where/else".utf8))),
            .okay(NFS3ReadlinkOkay(attributes: nil, path: [UInt8](repeating: 0x61, count: NFS3.maxPathLength))),
            .fail(.inval, fileAttributes),
        ]
        for result in results {
            let back = try roundTrip(NFS3ReadlinkReply(result: result), { $0.writeNFS3ReadlinkReply($1) },
                                     { try $0.readNFS3ReadlinkReply() })
            #expect(same(back.result, result))
        }
    }

    static let newObjectResults: [NFS3Result<NFS3NewObjectOkay, NFS3WCCData>] = [
        .okay(NFS3NewObjectOkay(object: fileHandle, attributes: fileAttributes, directoryWCC: wcc)),
        .okay(NFS3NewObjectOkay(object: nil, attributes: nil, directoryWCC: wccEmpty)),
        .fail(.exist, wcc),
        .fail(.nospc, wccEmpty),
    ]

    @Test(arguments: [
        NFS3CreateHow.unchecked(setAttributes), .guarded(setAttributesAll), .exclusive(NFS3Verifier(0x0123_4567_89ab_cdef)),
    ])
    func create(how: NFS3CreateHow) throws {
        let call = NFS3CreateCall(where: dirOp, how: how)
        #expect(try roundTrip(call, { $0.writeNFS3CreateCall($1) }, { try $0.readNFS3CreateCall() }) == call)
        for result in Self.newObjectResults {
            let back = try roundTrip(NFS3CreateReply(result: result), { $0.writeNFS3CreateReply($1) },
                                     { try $0.readNFS3CreateReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func createRejectsUnknownMode() throws {
        var b = ByteBuffer()
        b.writeNFS3DirOpArgs(dirOp)
        b.writeXDRUInt32(3)
        let error = #expect(throws: XDRError.self) { try b.readNFS3CreateCall() }
        #expect(error?.code == .invalidEnum)
    }

    @Test func mkdir() throws {
        let call = NFS3MkdirCall(where: otherDirOp, attributes: setAttributesAll)
        #expect(try roundTrip(call, { $0.writeNFS3MkdirCall($1) }, { try $0.readNFS3MkdirCall() }) == call)
        for result in Self.newObjectResults {
            let back = try roundTrip(NFS3MkdirReply(result: result), { $0.writeNFS3MkdirReply($1) },
                                     { try $0.readNFS3MkdirReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func symlink() throws {
        let call = NFS3SymlinkCall(where: dirOp, attributes: NFS3SetAttributes(mode: 0o777), target: Array("/etc/passwd".utf8))
        #expect(try roundTrip(call, { $0.writeNFS3SymlinkCall($1) }, { try $0.readNFS3SymlinkCall() }) == call)
        for result in Self.newObjectResults {
            let back = try roundTrip(NFS3SymlinkReply(result: result), { $0.writeNFS3SymlinkReply($1) },
                                     { try $0.readNFS3SymlinkReply() })
            #expect(same(back.result, result))
        }
    }

    @Test(arguments: [
        NFS3MknodData.characterDevice(setAttributes, NFS3SpecData(major: 1, minor: 3)),
        .blockDevice(setAttributesAll, NFS3SpecData(major: 8, minor: 0xffff_fff0)),
        .socket(setAttributes), .fifo(NFS3SetAttributes(mode: 0o600)),
        .other(.regular), .other(.directory), .other(.link),
    ])
    func mknod(what: NFS3MknodData) throws {
        let call = NFS3MknodCall(where: dirOp, what: what)
        let back = try roundTrip(call, { $0.writeNFS3MknodCall($1) }, { try $0.readNFS3MknodCall() })
        #expect(back == call)
        #expect(back.what.type == what.type)
        for result in Self.newObjectResults {
            let back = try roundTrip(NFS3MknodReply(result: result), { $0.writeNFS3MknodReply($1) },
                                     { try $0.readNFS3MknodReply() })
            #expect(same(back.result, result))
        }
    }

    @Test(arguments: [UInt32(0), 8, 0xffff_ffff])
    func mknodRejectsValuesOutsideFtype3(type: UInt32) throws {
        var b = ByteBuffer()
        b.writeNFS3DirOpArgs(dirOp)
        b.writeXDRUInt32(type)
        let error = #expect(throws: XDRError.self) { try b.readNFS3MknodCall() }
        #expect(error?.code == .invalidEnum)
    }

    @Test func mknodDefaultArmIsVoid() throws {
        var b = ByteBuffer()
        b.writeNFS3MknodCall(NFS3MknodCall(where: dirOp, what: .other(.regular)))
        var expected = ByteBuffer()
        expected.writeNFS3DirOpArgs(dirOp)
        expected.writeXDRUInt32(1)
        #expect(b == expected)
    }

    @Test func remove() throws {
        let call = NFS3RemoveCall(object: dirOp)
        #expect(try roundTrip(call, { $0.writeNFS3RemoveCall($1) }, { try $0.readNFS3RemoveCall() }) == call)
        for result: NFS3Result<NFS3WCCData, NFS3WCCData> in [.okay(wcc), .fail(.noent, wccAfterOnly)] {
            let back = try roundTrip(NFS3RemoveReply(result: result), { $0.writeNFS3RemoveReply($1) },
                                     { try $0.readNFS3RemoveReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func rmdir() throws {
        let call = NFS3RmdirCall(object: otherDirOp)
        #expect(try roundTrip(call, { $0.writeNFS3RmdirCall($1) }, { try $0.readNFS3RmdirCall() }) == call)
        for result: NFS3Result<NFS3WCCData, NFS3WCCData> in [.okay(wccEmpty), .fail(.notempty, wcc)] {
            let back = try roundTrip(NFS3RmdirReply(result: result), { $0.writeNFS3RmdirReply($1) },
                                     { try $0.readNFS3RmdirReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func rename() throws {
        let call = NFS3RenameCall(from: dirOp, to: otherDirOp)
        #expect(try roundTrip(call, { $0.writeNFS3RenameCall($1) }, { try $0.readNFS3RenameCall() }) == call)
        let results: [NFS3Result<NFS3RenameWCC, NFS3RenameWCC>] = [
            .okay(NFS3RenameWCC(fromDirectoryWCC: wcc, toDirectoryWCC: wccAfterOnly)),
            .fail(.xdev, NFS3RenameWCC(fromDirectoryWCC: wccEmpty, toDirectoryWCC: wcc)),
        ]
        for result in results {
            let back = try roundTrip(NFS3RenameReply(result: result), { $0.writeNFS3RenameReply($1) },
                                     { try $0.readNFS3RenameReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func link() throws {
        let call = NFS3LinkCall(file: fileHandle, link: otherDirOp)
        #expect(try roundTrip(call, { $0.writeNFS3LinkCall($1) }, { try $0.readNFS3LinkCall() }) == call)
        let results: [NFS3Result<NFS3LinkWCC, NFS3LinkWCC>] = [
            .okay(NFS3LinkWCC(fileAttributes: fileAttributes, linkDirectoryWCC: wcc)),
            .fail(.mlink, NFS3LinkWCC(fileAttributes: nil, linkDirectoryWCC: wccAfterOnly)),
        ]
        for result in results {
            let back = try roundTrip(NFS3LinkReply(result: result), { $0.writeNFS3LinkReply($1) },
                                     { try $0.readNFS3LinkReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func readdir() throws {
        let call = NFS3ReaddirCall(directory: directoryHandle, cookie: 0xfedc_ba98_7654_3210,
                                   cookieVerifier: NFS3Verifier(0x1122_3344_5566_7788), count: 32768)
        #expect(try roundTrip(call, { $0.writeNFS3ReaddirCall($1) }, { try $0.readNFS3ReaddirCall() }) == call)
        let entries = [
            NFS3ReaddirEntry(fileid: 2, name: Array(".".utf8), cookie: 1),
            NFS3ReaddirEntry(fileid: 1, name: Array("..".utf8), cookie: 2),
            NFS3ReaddirEntry(fileid: 0xffff_ffff_ffff, name: [UInt8](repeating: 0x7a, count: NFS3.maxNameLength), cookie: 3),
            NFS3ReaddirEntry(fileid: 99, name: [0xe2, 0x82, 0xac, 0xff], cookie: .max),
        ]
        let results: [NFS3Result<NFS3ReaddirOkay, NFS3FileAttributes?>] = [
            .okay(NFS3ReaddirOkay(directoryAttributes: directoryAttributes, cookieVerifier: NFS3Verifier(7),
                                  entries: entries, eof: true)),
            .okay(NFS3ReaddirOkay(directoryAttributes: nil, cookieVerifier: .zero, entries: [], eof: false)),
            .okay(NFS3ReaddirOkay(directoryAttributes: nil, cookieVerifier: .zero, entries: [], eof: true)),
            .okay(NFS3ReaddirOkay(directoryAttributes: directoryAttributes, cookieVerifier: NFS3Verifier(8),
                                  entries: (0..<2000).map {
                                      NFS3ReaddirEntry(fileid: UInt64($0), name: Array("f\($0)".utf8), cookie: UInt64($0) + 3)
                                  },
                                  eof: false)),
            .fail(.badCookie, directoryAttributes),
            .fail(.notdir, nil),
        ]
        for result in results {
            let back = try roundTrip(NFS3ReaddirReply(result: result), { $0.writeNFS3ReaddirReply($1) },
                                     { try $0.readNFS3ReaddirReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func readdirEntryListIsAnXDRLinkedList() throws {
        let ok = NFS3ReaddirOkay(directoryAttributes: nil, cookieVerifier: NFS3Verifier(5),
                                 entries: [NFS3ReaddirEntry(fileid: 9, name: [0x61, 0x62], cookie: 4)], eof: true)
        var b = ByteBuffer()
        b.writeNFS3ReaddirReply(NFS3ReaddirReply(result: .okay(ok)))
        #expect(try b.readXDRUInt32() == 0)  // NFS3_OK
        #expect(try b.readXDRBool() == false)  // no dir_attributes
        #expect(try b.readXDRUInt64() == 5)  // cookieverf
        #expect(try b.readXDRBool() == true)  // value follows
        #expect(try b.readXDRUInt64() == 9)
        #expect(try b.readXDRVariableOpaque(limit: 255) == ByteBuffer(bytes: [0x61, 0x62]))
        #expect(try b.readXDRUInt64() == 4)
        #expect(try b.readXDRBool() == false)  // end of list
        #expect(try b.readXDRBool() == true)  // eof
        try b.expectXDREnd()
    }

    @Test func readdirReplyWithEndlessListThrowsInsteadOfGrowing() throws {
        // A reply whose list never ends: the reader must run out of bytes, not memory.
        var b = ByteBuffer()
        b.writeNFS3Status(.ok)
        b.writeXDRBool(false)
        b.writeNFS3Verifier(.zero)
        for i in 0..<100 {
            b.writeXDRBool(true)
            b.writeXDRUInt64(UInt64(i))
            b.writeNFS3Name([0x78])
            b.writeXDRUInt64(UInt64(i))
        }
        b.writeXDRBool(true)
        #expect(throws: XDRError.self) { try b.readNFS3ReaddirReply() }
        // A bad value_follows is malformed too.
        var c = ByteBuffer()
        c.writeNFS3Status(.ok)
        c.writeXDRBool(false)
        c.writeNFS3Verifier(.zero)
        c.writeXDRUInt32(2)
        let error = #expect(throws: XDRError.self) { try c.readNFS3ReaddirReply() }
        #expect(error?.code == .invalidBool)
    }

    @Test func readdirplus() throws {
        let call = NFS3ReaddirplusCall(directory: directoryHandle, cookie: 77, cookieVerifier: NFS3Verifier(0xabcdef),
                                       dirCount: 8192, maxCount: 1 << 20)
        #expect(try roundTrip(call, { $0.writeNFS3ReaddirplusCall($1) }, { try $0.readNFS3ReaddirplusCall() }) == call)
        let entries = [
            NFS3ReaddirplusEntry(fileid: 2, name: Array(".".utf8), cookie: 1, attributes: directoryAttributes,
                                 handle: directoryHandle),
            NFS3ReaddirplusEntry(fileid: 1, name: Array("..".utf8), cookie: 2, attributes: nil, handle: nil),
            NFS3ReaddirplusEntry(fileid: 0x0102_0304_0506_0708, name: Array("hello.txt".utf8), cookie: 3,
                                 attributes: fileAttributes, handle: nil),
            NFS3ReaddirplusEntry(fileid: 12, name: [0xff], cookie: 4, attributes: nil,
                                 handle: NFS3FileHandle([UInt8](repeating: 0x5a, count: NFS3.maxFileHandleSize))),
        ]
        let results: [NFS3Result<NFS3ReaddirplusOkay, NFS3FileAttributes?>] = [
            .okay(NFS3ReaddirplusOkay(directoryAttributes: directoryAttributes, cookieVerifier: NFS3Verifier(3),
                                      entries: entries, eof: false)),
            .okay(NFS3ReaddirplusOkay(directoryAttributes: nil, cookieVerifier: .zero, entries: [], eof: true)),
            .fail(.toosmall, directoryAttributes),
            .fail(.notsupp, nil),
        ]
        for result in results {
            let back = try roundTrip(NFS3ReaddirplusReply(result: result), { $0.writeNFS3ReaddirplusReply($1) },
                                     { try $0.readNFS3ReaddirplusReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func fsstat() throws {
        let call = NFS3FsstatCall(fsRoot: directoryHandle)
        #expect(try roundTrip(call, { $0.writeNFS3FsstatCall($1) }, { try $0.readNFS3FsstatCall() }) == call)
        let results: [NFS3Result<NFS3FsstatOkay, NFS3FileAttributes?>] = [
            .okay(NFS3FsstatOkay(attributes: directoryAttributes, totalBytes: 1 << 40, freeBytes: 1 << 39,
                                 availableBytes: (1 << 39) - 4096, totalFiles: 10_000_000, freeFiles: 9_000_000,
                                 availableFiles: 8_999_999, invarsec: 0)),
            .okay(NFS3FsstatOkay(attributes: nil, totalBytes: .max, freeBytes: 1, availableBytes: 2, totalFiles: 3,
                                 freeFiles: 4, availableFiles: 5, invarsec: .max)),
            .fail(.io, directoryAttributes),
        ]
        for result in results {
            let back = try roundTrip(NFS3FsstatReply(result: result), { $0.writeNFS3FsstatReply($1) },
                                     { try $0.readNFS3FsstatReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func fsinfo() throws {
        #expect(NFS3FSInfoProperties.link == 1 && NFS3FSInfoProperties.symlink == 2)
        #expect(NFS3FSInfoProperties.homogeneous == 8 && NFS3FSInfoProperties.canSetTime == 0x10)
        let call = NFS3FsinfoCall(fsRoot: directoryHandle)
        #expect(try roundTrip(call, { $0.writeNFS3FsinfoCall($1) }, { try $0.readNFS3FsinfoCall() }) == call)
        let properties = NFS3FSInfoProperties.link | NFS3FSInfoProperties.symlink | NFS3FSInfoProperties.homogeneous
            | NFS3FSInfoProperties.canSetTime
        let results: [NFS3Result<NFS3FsinfoOkay, NFS3FileAttributes?>] = [
            .okay(NFS3FsinfoOkay(attributes: directoryAttributes, rtmax: 1 << 20, rtpref: 1 << 20, rtmult: 4096,
                                 wtmax: 1 << 20, wtpref: 1 << 19, wtmult: 512, dtpref: 32768,
                                 maxFileSize: 0x7fff_ffff_ffff_ffff, timeDelta: NFS3Time(seconds: 0, nanoseconds: 1),
                                 properties: properties)),
            .fail(.serverfault, nil),
        ]
        for result in results {
            let back = try roundTrip(NFS3FsinfoReply(result: result), { $0.writeNFS3FsinfoReply($1) },
                                     { try $0.readNFS3FsinfoReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func pathconf() throws {
        let call = NFS3PathconfCall(object: fileHandle)
        #expect(try roundTrip(call, { $0.writeNFS3PathconfCall($1) }, { try $0.readNFS3PathconfCall() }) == call)
        let results: [NFS3Result<NFS3PathconfOkay, NFS3FileAttributes?>] = [
            .okay(NFS3PathconfOkay(attributes: fileAttributes, linkMax: 65000, nameMax: 255, noTrunc: true,
                                   chownRestricted: true, caseInsensitive: false, casePreserving: true)),
            .okay(NFS3PathconfOkay(attributes: nil, linkMax: 1, nameMax: 14, noTrunc: false,
                                   chownRestricted: false, caseInsensitive: true, casePreserving: false)),
            .fail(.badhandle, fileAttributes),
        ]
        for result in results {
            let back = try roundTrip(NFS3PathconfReply(result: result), { $0.writeNFS3PathconfReply($1) },
                                     { try $0.readNFS3PathconfReply() })
            #expect(same(back.result, result))
        }
    }

    @Test func commit() throws {
        let call = NFS3CommitCall(file: fileHandle, offset: 0x1_0000_0000, count: 65536)
        #expect(try roundTrip(call, { $0.writeNFS3CommitCall($1) }, { try $0.readNFS3CommitCall() }) == call)
        let results: [NFS3Result<NFS3CommitOkay, NFS3WCCData>] = [
            .okay(NFS3CommitOkay(wcc: wccAfterOnly, verifier: NFS3Verifier(0x5eed_5eed_5eed_5eed))),
            .fail(.io, wcc),
        ]
        for result in results {
            let back = try roundTrip(NFS3CommitReply(result: result), { $0.writeNFS3CommitReply($1) },
                                     { try $0.readNFS3CommitReply() })
            #expect(same(back.result, result))
        }
    }

    // MARK: - Truncation and limits

    @Test func everyPrefixOfACallThrows() {
        expectEveryPrefixThrows(NFS3SetattrCall(object: fileHandle, newAttributes: setAttributesAll,
                                                guardCtime: NFS3Time(seconds: 3, nanoseconds: 4)),
                                { $0.writeNFS3SetattrCall($1) }, { try $0.readNFS3SetattrCall() })
        expectEveryPrefixThrows(NFS3LookupCall(what: otherDirOp), { $0.writeNFS3LookupCall($1) }, { try $0.readNFS3LookupCall() })
        expectEveryPrefixThrows(NFS3CreateCall(where: dirOp, how: .guarded(setAttributes)),
                                { $0.writeNFS3CreateCall($1) }, { try $0.readNFS3CreateCall() })
        expectEveryPrefixThrows(NFS3CreateCall(where: dirOp, how: .exclusive(NFS3Verifier(1))),
                                { $0.writeNFS3CreateCall($1) }, { try $0.readNFS3CreateCall() })
        expectEveryPrefixThrows(NFS3SymlinkCall(where: otherDirOp, attributes: setAttributes, target: Array("target".utf8)),
                                { $0.writeNFS3SymlinkCall($1) }, { try $0.readNFS3SymlinkCall() })
        expectEveryPrefixThrows(NFS3MknodCall(where: dirOp, what: .blockDevice(setAttributes, NFS3SpecData(major: 8, minor: 16))),
                                { $0.writeNFS3MknodCall($1) }, { try $0.readNFS3MknodCall() })
        expectEveryPrefixThrows(NFS3RenameCall(from: dirOp, to: otherDirOp), { $0.writeNFS3RenameCall($1) },
                                { try $0.readNFS3RenameCall() })
        expectEveryPrefixThrows(NFS3LinkCall(file: fileHandle, link: dirOp), { $0.writeNFS3LinkCall($1) },
                                { try $0.readNFS3LinkCall() })
        expectEveryPrefixThrows(NFS3ReaddirplusCall(directory: directoryHandle, cookie: 1, cookieVerifier: NFS3Verifier(2),
                                                    dirCount: 3, maxCount: 4),
                                { $0.writeNFS3ReaddirplusCall($1) }, { try $0.readNFS3ReaddirplusCall() })
        expectEveryPrefixThrows(NFS3CommitCall(file: fileHandle, offset: 1, count: 2), { $0.writeNFS3CommitCall($1) },
                                { try $0.readNFS3CommitCall() })
    }

    @Test func everyPrefixOfAReaddirReplyThrows() {
        let ok = NFS3ReaddirplusOkay(directoryAttributes: directoryAttributes, cookieVerifier: NFS3Verifier(1), entries: [
            NFS3ReaddirplusEntry(fileid: 1, name: [0x61], cookie: 1, attributes: fileAttributes, handle: fileHandle),
            NFS3ReaddirplusEntry(fileid: 2, name: [0x62, 0x63], cookie: 2, attributes: nil, handle: nil),
        ], eof: true)
        expectEveryPrefixThrows(NFS3ReaddirplusReply(result: .okay(ok)), { $0.writeNFS3ReaddirplusReply($1) },
                                { try $0.readNFS3ReaddirplusReply() })
        let plain = NFS3ReaddirOkay(directoryAttributes: nil, cookieVerifier: NFS3Verifier(1),
                                    entries: [NFS3ReaddirEntry(fileid: 1, name: [0x61, 0x62, 0x63, 0x64, 0x65], cookie: 1)],
                                    eof: false)
        expectEveryPrefixThrows(NFS3ReaddirReply(result: .okay(plain)), { $0.writeNFS3ReaddirReply($1) },
                                { try $0.readNFS3ReaddirReply() })
    }

    @Test func fileHandleLongerThan64BytesIsRejected() throws {
        var b = ByteBuffer()
        b.writeNFS3LookupCall(NFS3LookupCall(what: NFS3DirOpArgs(directory: NFS3FileHandle([UInt8](repeating: 1, count: 65)),
                                                                 name: [0x61])))
        let error = #expect(throws: XDRError.self) { try b.readNFS3LookupCall() }
        #expect(error?.code == .lengthExceedsLimit)

        var c = ByteBuffer()
        c.writeNFS3CommitCall(NFS3CommitCall(file: NFS3FileHandle([UInt8](repeating: 2, count: 65)), offset: 0, count: 0))
        #expect(throws: XDRError.self) { try c.readNFS3CommitCall() }

        // 64 bytes is the largest handle and is accepted.
        let largest = NFS3LinkCall(file: NFS3FileHandle([UInt8](repeating: 3, count: 64)), link: dirOp)
        #expect(try roundTrip(largest, { $0.writeNFS3LinkCall($1) }, { try $0.readNFS3LinkCall() }) == largest)
    }

    @Test func nameLongerThan255BytesIsRejected() throws {
        let longName = [UInt8](repeating: 0x6e, count: 256)
        var b = ByteBuffer()
        b.writeNFS3RemoveCall(NFS3RemoveCall(object: NFS3DirOpArgs(directory: directoryHandle, name: longName)))
        let error = #expect(throws: XDRError.self) { try b.readNFS3RemoveCall() }
        #expect(error?.code == .lengthExceedsLimit)

        var c = ByteBuffer()
        c.writeNFS3RenameCall(NFS3RenameCall(from: dirOp, to: NFS3DirOpArgs(directory: directoryHandle, name: longName)))
        #expect(throws: XDRError.self) { try c.readNFS3RenameCall() }

        // In a READDIR reply too.
        var d = ByteBuffer()
        d.writeNFS3ReaddirReply(NFS3ReaddirReply(result: .okay(NFS3ReaddirOkay(
            directoryAttributes: nil, cookieVerifier: .zero,
            entries: [NFS3ReaddirEntry(fileid: 1, name: longName, cookie: 1)], eof: true))))
        #expect(throws: XDRError.self) { try d.readNFS3ReaddirReply() }

        let longest = NFS3MkdirCall(where: NFS3DirOpArgs(directory: directoryHandle, name: Array(longName.dropLast())),
                                    attributes: NFS3SetAttributes())
        #expect(try roundTrip(longest, { $0.writeNFS3MkdirCall($1) }, { try $0.readNFS3MkdirCall() }) == longest)
    }

    // MARK: - Entry sizes

    @Test(arguments: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 254, 255])
    func readdirEntrySizeMatchesTheWire(nameLength: Int) {
        let entry = NFS3ReaddirEntry(fileid: 123, name: [UInt8](repeating: 0x41, count: nameLength), cookie: 456)
        var b = ByteBuffer()
        let written = b.writeNFS3ReaddirEntry(entry)
        #expect(written == b.readableBytes)
        #expect(NFS3ReaddirEntry.encodedSize(nameLength: nameLength) == written)
        #expect(entry.encodedSize == written)
        #expect(written == 24 + (nameLength + 3) / 4 * 4)
    }

    @Test(arguments: [0, 1, 3, 4, 5, 255], [0, 1, 63, 64])
    func readdirplusEntrySizeMatchesTheWire(nameLength: Int, handleLength: Int) {
        let name = [UInt8](repeating: 0x42, count: nameLength)
        let handle = NFS3FileHandle([UInt8](repeating: 0x43, count: handleLength))
        for attributes in [fileAttributes, nil] {
            for handle in [handle, nil] {
                let entry = NFS3ReaddirplusEntry(fileid: 9, name: name, cookie: 10, attributes: attributes, handle: handle)
                var b = ByteBuffer()
                let written = b.writeNFS3ReaddirplusEntry(entry)
                #expect(written == b.readableBytes)
                #expect(NFS3ReaddirplusEntry.encodedSize(nameLength: nameLength, hasAttributes: attributes != nil,
                                                         handleLength: handle?.bytes.count) == written)
                #expect(entry.encodedSize == written)
                // dircount: the READDIR-style size of the same entry.
                var r = ByteBuffer()
                #expect(NFS3ReaddirplusEntry.dirCountSize(nameLength: nameLength)
                    == r.writeNFS3ReaddirEntry(NFS3ReaddirEntry(fileid: 9, name: name, cookie: 10)))
                #expect(entry.dirCountSize == r.readableBytes)
            }
        }
    }

    @Test func wholeReplySizesAddUp() {
        for attributes in [directoryAttributes, nil] {
            let entries = (0..<7).map {
                NFS3ReaddirEntry(fileid: UInt64($0), name: [UInt8](repeating: 0x61, count: $0 * 3), cookie: 1)
            }
            var b = ByteBuffer()
            let n = b.writeNFS3ReaddirReply(NFS3ReaddirReply(result: .okay(NFS3ReaddirOkay(
                directoryAttributes: attributes, cookieVerifier: .zero, entries: entries, eof: true))))
            #expect(n == NFS3ReaddirOkay.encodedSizeWithoutEntries(hasDirectoryAttributes: attributes != nil)
                + entries.reduce(0) { $0 + $1.encodedSize })

            let plus = entries.map {
                NFS3ReaddirplusEntry(fileid: $0.fileid, name: $0.name, cookie: $0.cookie,
                                     attributes: $0.fileid.isMultiple(of: 2) ? fileAttributes : nil,
                                     handle: $0.fileid.isMultiple(of: 3) ? fileHandle : nil)
            }
            var c = ByteBuffer()
            let m = c.writeNFS3ReaddirplusReply(NFS3ReaddirplusReply(result: .okay(NFS3ReaddirplusOkay(
                directoryAttributes: attributes, cookieVerifier: .zero, entries: plus, eof: false))))
            #expect(m == NFS3ReaddirplusOkay.encodedSizeWithoutEntries(hasDirectoryAttributes: attributes != nil)
                + plus.reduce(0) { $0 + $1.encodedSize })
        }
    }

    @Test func fattr3SizeConstant() {
        var b = ByteBuffer()
        #expect(b.writeNFS3FileAttributes(fileAttributes) == NFS3FileAttributes.encodedSize)
    }
}
