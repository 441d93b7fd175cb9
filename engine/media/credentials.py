"""Content Credentials (C2PA): every file swapwizard writes carries a signed manifest saying it is synthetic.

The manifest says, in C2PA's own terms, that the file was made by compositing with trained algorithmic
media (IPTC digital source type ``compositeWithTrainedAlgorithmicMedia``), by which tool and version,
that the face of the destination was replaced and (assertions the user can turn off in ``[c2pa]``) the
date of the workspace's consent record and the model's name and iteration. The same IPTC
``DigitalSourceType`` goes into XMP (a PNG ``iTXt`` chunk; an MP4 top-level XMP ``uuid`` box) before
signing, so the signature covers it too. Signing and reading use the ``c2pa-python`` library
(imported only when a file is signed or read: the wizard reads credentials without torch or cv2).

Keys without fuss: unless ``[c2pa] cert``/``key`` (or ``--c2pa-cert``/``--c2pa-key``) name a certificate
from a trusted CA, a local identity is created once, on first use, in ``$XDG_CONFIG_HOME/swapwizard/c2pa/``
(``~/.config`` by default; ``SWAPWIZARD_C2PA_DIR`` overrides the folder): a local CA and an EC P-256
signing certificate with the key usages C2PA requires (digitalSignature; document-signing and
email-protection EKUs), private key mode 0600, the CA's private key discarded. Files signed with it
verify as signed and intact, by an identity no trust list knows ("untrusted").

Signing is atomic: the caller's complete temp file is signed into a second temp file that is renamed
over the final name only when signing succeeded, so a crash never leaves a half-signed file under the
final name. A signing failure is a ``UserError`` (one sentence, a hint that names ``--no-c2pa``).

This module sits in the media layer: it imports only the standard library, ``engine`` base modules
(errors, atomic, settings) and, lazily, ``c2pa`` and ``cryptography``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__
from engine import settings as declared
from engine.atomic import atomic_open
from engine.errors import UserError

#: IPTC digital source type: "a mix of synthetic and non-synthetic content, the synthetic part made by a
#: model trained on sampled content" (a face swap).
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
#: Digital source types that say "made or changed by AI" (verify reports them as AI-generated).
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
                   "compositeSynthetic")
TOOL = "swapwizard"
MIME_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png",
              ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".tif": "image/tiff",
              ".tiff": "image/tiff", ".avi": "video/x-msvideo", ".wav": "audio/wav", ".mp3": "audio/mpeg",
              ".heic": "image/heic", ".avif": "image/avif", ".gif": "image/gif", ".pdf": "application/pdf"}
#: XMP's ISO BMFF box: a top-level ``uuid`` box with this id (XMP Specification Part 3).
XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Names of the local identity's files in its folder.
SIGNER_CERT, SIGNER_KEY, CA_CERT = "signer.pem", "signer.key", "local-ca.pem"
LOCAL_CN, LOCAL_ORG = "swapwizard local signer", "swapwizard local identity"
#: Offline servers: never fetch remote manifests or OCSP answers while reading or signing.
_OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
#: Validation failure codes that mean the file's bytes changed after signing.
_CONTENT_CODES = ("assertion.dataHash.mismatch", "assertion.bmffHash.mismatch", "assertion.boxesHash.mismatch",
                  "assertion.collectionHash.mismatch", "assertion.hashedURI.mismatch", "assertion.dataHash.malformed",
                  "assertion.bmffHash.malformed")
_NO_C2PA_HINT = "Or export without Content Credentials with --no-c2pa (the file still carries its metadata label)."


# ------------------------------------------------------------------------------------------------
# XMP: the IPTC DigitalSourceType where the format has a place for it
# ------------------------------------------------------------------------------------------------

def xmp_packet(description: str = "") -> bytes:
    """An XMP packet with the IPTC DigitalSourceType, the creator tool and a description."""
    text = (description or "Synthetic media: a face was replaced by a trained model (face swap).")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'Iptc4xmpExt:DigitalSourceType="{SOURCE_TYPE}" xmp:CreatorTool="{TOOL} {__version__}">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt></dc:description>'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def png_with_xmp(data: bytes, description: str = "") -> bytes:
    """PNG bytes with an XMP ``iTXt`` chunk (``XML:com.adobe.xmp``) right after the header."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    body = b"XML:com.adobe.xmp\0\0\0\0\0" + xmp_packet(description)  # keyword, flag, method, lang, key
    header_end = 8 + 4 + 4 + 13 + 4
    return data[:header_end] + _png_chunk(b"iTXt", body) + data[header_end:]


def append_mp4_xmp(path: str | os.PathLike[str], description: str = "") -> None:
    """Append a top-level XMP ``uuid`` box to an MP4 file (after every other box: no offset moves)."""
    packet = xmp_packet(description)
    with open(path, "ab") as handle:
        handle.write(struct.pack(">I", 8 + 16 + len(packet)) + b"uuid" + XMP_UUID + packet)


def _top_boxes(handle: Any, size: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, payload length) of the top-level boxes of an ISO BMFF file."""
    pos = 0
    while pos + 8 <= size:
        handle.seek(pos)
        head = handle.read(16)
        length, kind = struct.unpack(">I4s", head[:8])
        start = pos + 8
        if length == 1:
            length, start = struct.unpack(">Q", head[8:16])[0], pos + 16
        elif length == 0:
            length = size - pos
        if length < start - pos:
            return
        yield kind, start, pos + length - start
        pos += length


def xmp_source_type(path: str | os.PathLike[str]) -> str | None:
    """The IPTC DigitalSourceType written in the file's XMP (PNG iTXt or MP4 uuid box), if any."""
    marker = b'Iptc4xmpExt:DigitalSourceType="'
    packets: list[bytes] = []
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(12)
            if head.startswith(PNG_SIGNATURE):
                handle.seek(8)
                while True:
                    top = handle.read(8)
                    if len(top) < 8:
                        break
                    length, kind = struct.unpack(">I4s", top)
                    if kind == b"iTXt":
                        body = handle.read(length)
                        if body.startswith(b"XML:com.adobe.xmp\0"):
                            packets.append(body)
                        handle.seek(4, 1)
                    elif kind == b"IEND":
                        break
                    else:
                        handle.seek(length + 4, 1)
            elif head[4:8] == b"ftyp":
                for kind, start, length in _top_boxes(handle, size):
                    if kind == b"uuid" and length < 1 << 20:
                        handle.seek(start)
                        if handle.read(16) == XMP_UUID:
                            packets.append(handle.read(length - 16))
    except (OSError, struct.error):
        return None
    for packet in packets:
        at = packet.find(marker)
        if at >= 0:
            end = packet.find(b'"', at + len(marker))
            return packet[at + len(marker):end].decode("utf-8", "replace")
    return None


# ------------------------------------------------------------------------------------------------
# The signing identity
# ------------------------------------------------------------------------------------------------

def identity_dir() -> Path:
    """Where the local signing identity lives: ``$SWAPWIZARD_C2PA_DIR``, else ``$XDG_CONFIG_HOME/swapwizard/c2pa``."""
    if os.environ.get("SWAPWIZARD_C2PA_DIR"):
        return Path(os.environ["SWAPWIZARD_C2PA_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "swapwizard" / "c2pa"


@dataclass(frozen=True)
class Identity:
    """A certificate chain (PEM: the signer first) and its private key (PEM)."""

    cert_pem: bytes
    key_pem: bytes
    cert_path: Path
    key_path: Path
    #: True for the local identity swapwizard made (untrusted by every verifier).
    local: bool = False
    #: True when this call created the local identity.
    created: bool = False
    alg: str = "es256"
    common_name: str = ""

    def describe(self) -> str:
        if self.local:
            return f"the local identity in {self.cert_path.parent} (untrusted until you supply a CA certificate)"
        return f"{self.common_name or 'the certificate'} from {self.cert_path}"


def _x509_name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, LOCAL_ORG)])


def _make_local_identity() -> tuple[bytes, bytes, bytes]:
    """(signer chain PEM, signer key PEM, CA cert PEM): a local CA and an EC P-256 C2PA signing certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

    now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
    until = now + _dt.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _x509_name("swapwizard local CA")
    no_usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **no_usage),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    document_signing = ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning (RFC 9336)
    cert = (x509.CertificateBuilder().subject_name(_x509_name(LOCAL_CN)).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **no_usage),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([document_signing, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = cert.public_bytes(pem) + ca.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, key_pem, ca.public_bytes(pem)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` (two engines starting at once make one identity, not two)."""
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def local_identity(folder: Path | None = None) -> Identity:
    """The local signing identity, created on first use (key file mode 0600, folder 0700) and reused."""
    folder = folder or identity_dir()
    cert_path, key_path = folder / SIGNER_CERT, folder / SIGNER_KEY
    created = False
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(folder):
            if not (cert_path.is_file() and key_path.is_file()):
                chain, key_pem, ca_pem = _make_local_identity()
                with atomic_open(key_path, mode=0o600) as handle:
                    handle.write(key_pem)
                with atomic_open(folder / CA_CERT, mode=0o644) as handle:
                    handle.write(ca_pem)
                with atomic_open(cert_path, mode=0o644) as handle:  # last: its presence means "complete"
                    handle.write(chain)
                created = True
            cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise UserError(f"The local Content Credentials identity in {folder} could not be "
                        f"{'created' if not cert_path.exists() else 'read'}: {exc.strerror or exc}.",
                        "Make that folder writable (or set SWAPWIZARD_C2PA_DIR), or set [c2pa] cert and key. "
                        + _NO_C2PA_HINT) from None
    alg, common_name = _check_pair(cert_pem, key_pem, cert_path, key_path)
    return Identity(cert_pem, key_pem, cert_path, key_path, local=True, created=created, alg=alg,
                    common_name=common_name)


def _check_pair(cert_pem: bytes, key_pem: bytes, cert_path: Path, key_path: Path) -> tuple[str, str]:
    """(C2PA algorithm, signer common name) of a PEM chain and key; ``UserError`` when they do not fit."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import NameOID

    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise UserError(f"The Content Credentials certificate {cert_path} is not a PEM certificate.",
                        "Set [c2pa] cert (or --c2pa-cert) to a PEM file with the signing certificate first, "
                        "then its CA chain. " + _NO_C2PA_HINT) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise UserError(f"The Content Credentials key {key_path} is not an unencrypted PEM private key.",
                        "Set [c2pa] key (or --c2pa-key) to the signing certificate's private key in PEM "
                        "(PKCS#8, no passphrase). " + _NO_C2PA_HINT) from None
    leaf = certs[0]
    if leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise UserError(f"The key {key_path} does not belong to the certificate {cert_path}.",
                        "Give the private key of the first certificate in that file. " + _NO_C2PA_HINT)
    now = _dt.datetime.now(_dt.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise UserError(f"The Content Credentials certificate {cert_path} is not valid now "
                        f"(valid {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}).",
                        "Renew it (for the local identity: delete its folder and a new one is made). "
                        + _NO_C2PA_HINT)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(key.curve.name)
    elif isinstance(key, rsa.RSAPrivateKey):
        alg = "ps256"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    else:
        alg = None
    if alg is None:
        raise UserError(f"The key {key_path} is of a kind C2PA cannot sign with.",
                        "Use an EC P-256/P-384/P-521, RSA (PSS) or Ed25519 key. " + _NO_C2PA_HINT)
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return alg, (str(names[0].value) if names else leaf.subject.rfc4514_string())


def user_identity(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> Identity:
    """The identity of a user's certificate chain and key files (PEM)."""
    cert_path, key_path = Path(cert), Path(key)
    for path, what in ((cert_path, "certificate"), (key_path, "key")):
        if not path.is_file():
            raise UserError(f"The Content Credentials {what} {path} does not exist.",
                            f"Set [c2pa] {'cert' if what == 'certificate' else 'key'} in workspace.toml (or "
                            f"--c2pa-{'cert' if what == 'certificate' else 'key'}) to a PEM file. " + _NO_C2PA_HINT)
    try:
        cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise UserError(f"The Content Credentials files could not be read: {exc.strerror or exc}.",
                        "Check their permissions. " + _NO_C2PA_HINT) from None
    alg, common_name = _check_pair(cert_pem, key_pem, cert_path, key_path)
    return Identity(cert_pem, key_pem, cert_path, key_path, alg=alg, common_name=common_name)


# ------------------------------------------------------------------------------------------------
# Signing
# ------------------------------------------------------------------------------------------------

def mime_type(path: str | os.PathLike[str]) -> str | None:
    return MIME_TYPES.get(Path(path).suffix.lower())


#: c2pa-rs holds an MP4 in memory while it signs it: measured peak growth 2.0 times the file's size
#: (51 MB -> +102 MB, 167 MB -> +320 MB; c2pa-python 0.38.1 / c2pa-rs 0.91.3).
MEMORY_PER_BYTE = 2.2


def _available_memory() -> int | None:
    """MemAvailable in bytes (Linux), None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(source: Path, title: str) -> None:
    """A ``UserError`` before signing a file the machine has too little memory for (not an OOM kill later)."""
    need = int(source.stat().st_size * MEMORY_PER_BYTE)
    free = _available_memory()
    if free is not None and need > free:
        raise UserError(f"Signing {title} ({source.stat().st_size / 1e9:.1f} GB) with Content Credentials needs about "
                        f"{need / 1e9:.1f} GB of memory, and {free / 1e9:.1f} GB are free.",
                        "Free some memory (stop a training), or export in parts. " + _NO_C2PA_HINT)


def _tiny_png() -> bytes:
    raw = zlib.compress(b"\0\0\0\0")
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", raw) + _png_chunk(b"IEND", b"")


@dataclass
class Credentials:
    """What to sign with and what the manifests say; one per export (merge, compare)."""

    identity: Identity
    timestamp_url: str = ""
    #: Models used: [{"name": ..., "iteration": ...}] (empty: no model assertion).
    models: Sequence[dict[str, Any]] = ()
    #: The workspace's consent record date ("" : no consent assertion).
    consent_date: str = ""
    description: str = ("The face of the person in the destination footage was replaced with a face made by a "
                        "trained model (face swap).")
    _signer: Any = field(default=None, repr=False)
    _context: Any = field(default=None, repr=False)

    def manifest(self, title: str, mime: str) -> dict[str, Any]:
        agent = {"name": TOOL, "version": __version__}
        assertions: list[dict[str, Any]] = [
            {"label": "c2pa.actions.v2", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": SOURCE_TYPE, "softwareAgent": agent,
                "description": self.description,
                "parameters": {"org.swapwizard.face_replaced": True, "org.swapwizard.replaced": "destination face"},
            }]}},
        ]
        if self.models:
            assertions.append({"label": "org.swapwizard.model", "data": {"models": [dict(m) for m in self.models]}})
        if self.consent_date:
            assertions.append({"label": "org.swapwizard.consent",
                               "data": {"recorded": True, "date": self.consent_date}})
        return {"claim_generator_info": [agent], "title": title, "format": mime, "assertions": assertions}

    def _native(self) -> tuple[Any, Any]:
        import c2pa

        if self._signer is None:
            info = c2pa.C2paSignerInfo(alg=self.identity.alg.encode(), sign_cert=self.identity.cert_pem,
                                       private_key=self.identity.key_pem,
                                       ta_url=self.timestamp_url.encode() if self.timestamp_url else None)
            self._signer = c2pa.Signer.from_info(info)
            self._context = c2pa.Context.from_dict({**_OFFLINE, "builder": {"thumbnail": {"enabled": False}}})
        return self._signer, self._context

    def _sign_stream(self, source: Any, dest: Any, mime: str, title: str) -> None:
        import c2pa

        signer, context = self._native()
        with c2pa.Builder(self.manifest(title, mime), context=context) as builder:
            builder.sign(signer, mime, source, dest)

    def _failure(self, exc: BaseException, target: str) -> UserError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space left" in text:
            return UserError(f"The disk is full: {target} could not be signed with Content Credentials.",
                             "Free some space and export again; finished merge parts are kept. " + _NO_C2PA_HINT)
        if self.timestamp_url and any(w in text.lower() for w in ("timestamp", "tsa", "http", "connect", "dns")):
            return UserError(f"{target} could not be signed: the time-stamp server {self.timestamp_url} did not "
                             f"answer ({text}).", "Clear [c2pa] timestamp_url (servers without internet cannot "
                             "reach one). " + _NO_C2PA_HINT)
        return UserError(f"{target} could not be signed with Content Credentials ({self.identity.describe()}): "
                         f"{text}.", "Check [c2pa] cert and key in workspace.toml (or --c2pa-cert/--c2pa-key). "
                         + _NO_C2PA_HINT)

    def check(self) -> None:
        """Sign a 1-pixel PNG in memory: a bad certificate or key fails now, before a long merge."""
        import io

        try:
            self._sign_stream(io.BytesIO(_tiny_png()), io.BytesIO(), "image/png", "check.png")
        except Exception as exc:  # noqa: BLE001 - c2pa raises its own error types; each becomes one sentence
            raise self._failure(exc, "A test picture") from None

    def sign_bytes(self, data: bytes, mime: str, title: str) -> bytes:
        """The signed copy of a complete file's bytes (PNG gets the XMP first)."""
        import io

        if mime == "image/png":
            data = png_with_xmp(data, self.description)
        dest = io.BytesIO()
        try:
            self._sign_stream(io.BytesIO(data), dest, mime, title)
        except Exception as exc:  # noqa: BLE001
            raise self._failure(exc, title) from None
        return dest.getvalue()

    def sign_file(self, source: Path, dest: Path, title: str) -> None:
        """Sign the complete file ``source`` into ``dest`` (a temp name; removed again on failure).

        An MP4 ``source`` (the caller's own temp file) gets the XMP box appended first.
        """
        mime = mime_type(title) or mime_type(source)
        if mime is None:
            raise UserError(f"{title} is of a kind Content Credentials are not written for here.",
                            "Write MP4, PNG or JPEG. " + _NO_C2PA_HINT)
        try:
            if mime == "video/mp4":
                append_mp4_xmp(source, self.description)
            if self._short_of_space(source, dest):
                raise OSError(errno.ENOSPC, "No space left on device")
            _check_memory(source, title)
            with open(source, "rb") as src, open(dest, "w+b") as dst:
                self._sign_stream(src, dst, mime, title)
                dst.flush()
                os.fsync(dst.fileno())
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001
            with contextlib.suppress(OSError):
                dest.unlink()
            # A write error inside the library comes back as an opaque I/O error: tell a full disk apart.
            full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC or self._short_of_space(source, dest)
            raise self._failure(OSError(errno.ENOSPC, "No space left on device") if full else exc, title) from None

    @staticmethod
    def _short_of_space(source: Path, dest: Path) -> bool:
        """True when ``dest``'s disk cannot hold a signed copy of ``source`` (its size plus the manifest)."""
        import shutil

        try:
            return shutil.disk_usage(dest.parent).free < source.stat().st_size + (16 << 10)
        except OSError:
            return False

    def summary(self) -> dict[str, Any]:
        """What the result of a job says about its credentials."""
        return {"signed": True, "signer": self.identity.common_name, "local_identity": self.identity.local,
                "trusted": False if self.identity.local else None, "certificate": str(self.identity.cert_path),
                "digital_source_type": SOURCE_TYPE, "timestamped": bool(self.timestamp_url)}


def result_line(credentials: Credentials | None) -> str:
    """A job result's one line about its credentials (the CLI prints it)."""
    if credentials is None:
        return "none (--no-c2pa): the files carry only the metadata label"
    who = credentials.identity
    return f"signed by {who.common_name}" + (" (local identity, untrusted)" if who.local else "")


def identity_notice(identity: Identity) -> str:
    """The one-time sentence said when the local identity is created."""
    return (f"Created a local Content Credentials signing identity in {identity.cert_path.parent} (private key "
            f"{identity.key_path.name}, readable only by you). Verifiers show files signed with it as signed by "
            "an untrusted identity until you set [c2pa] cert and key in workspace.toml (or --c2pa-cert/--c2pa-key) "
            "to a certificate from a trusted CA.")


def for_workspace(ws: Any, report: Any = None, *, enabled: bool = True, cert: str = "", key: str = "",
                  models: Sequence[dict[str, Any]] = ()) -> Credentials | None:
    """The export's credentials from the workspace's ``[c2pa]`` settings and the request; checked now.

    ``enabled=False`` (``--no-c2pa``) gives None and says so in the job's events. ``cert``/``key``
    override ``[c2pa] cert``/``key`` (paths relative to the workspace). A new local identity is
    announced once, when it is created.
    """
    if not enabled:
        if report is not None:
            report.warning("Content Credentials are off (--no-c2pa): the files written carry no signed C2PA "
                           "manifest, only the synthetic-media metadata label.")
        return None
    values = declared.layered("c2pa", ("workspace.toml", ws.section("c2pa")),
                              ("the request", {"cert": cert or None, "key": key or None}))
    if bool(values["cert"]) != bool(values["key"]):
        missing = "key" if values["cert"] else "cert"
        raise UserError(f"[c2pa] {missing} is not set, but [c2pa] {'cert' if missing == 'key' else 'key'} is.",
                        "Set both (the certificate chain and its private key, PEM), or neither for the local "
                        "identity. " + _NO_C2PA_HINT)
    if values["cert"]:
        def resolve(value: str) -> Path:
            path = Path(value).expanduser()
            return path if path.is_absolute() else Path(ws.root) / path

        identity = user_identity(resolve(values["cert"]), resolve(values["key"]))
    else:
        identity = local_identity()
        if identity.created and report is not None:
            report.warning(identity_notice(identity))
    consent = ws.section("consent") if values["consent_date"] else {}
    credentials = Credentials(identity, timestamp_url=values["timestamp_url"],
                              models=list(models) if values["model_info"] else [],
                              consent_date=str(consent.get("date") or "") if consent.get("confirmed") else "")
    credentials.check()
    return credentials


# ------------------------------------------------------------------------------------------------
# Reading (swapwizard verify, the wizard's Export step)
# ------------------------------------------------------------------------------------------------

def _local_serial() -> str | None:
    """The serial number of this machine's local signer certificate (None when there is none)."""
    path = identity_dir() / SIGNER_CERT
    try:
        from cryptography import x509

        return str(x509.load_pem_x509_certificates(path.read_bytes())[0].serial_number)
    except (OSError, ValueError, IndexError):
        return None


def read_credentials(path: str | os.PathLike[str], trust_pem: bytes | None = None) -> dict[str, Any]:
    """What a file's Content Credentials say (ours or anyone's), as a plain dict.

    Keys: ``signed`` (a manifest is present), ``signer``/``issuer``, ``signature_valid``,
    ``content_intact`` (the bytes still match what was signed), ``trusted`` (the signer chains to a
    trust anchor: ``trust_pem`` adds some), ``ai_generated``, ``actions``, ``assertions`` (swapwizard's
    own), ``failures``, ``state`` (c2pa's Invalid/Valid/Trusted), ``xmp_source_type``, ``error``.
    """
    import c2pa

    path = Path(path)
    found: dict[str, Any] = {"path": str(path), "signed": False, "error": None, "xmp_source_type": None}
    if not path.is_file():
        found["error"] = "the file does not exist"
        return found
    found["xmp_source_type"] = xmp_source_type(path)
    settings: dict[str, Any] = dict(_OFFLINE)
    if trust_pem:
        settings["trust"] = {"user_anchors": trust_pem.decode("utf-8", "replace")}
    try:
        with c2pa.Context.from_dict(settings) as context, c2pa.Reader(str(path), context=context) as reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            manifest = reader.get_active_manifest() or {}
    except Exception as exc:  # noqa: BLE001 - the library's errors say "no manifest" or "cannot read"
        text = str(exc)
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in text or "ManifestNotFound" in text:
            return found
        found["error"] = (f"this kind of file cannot be read ({text.splitlines()[0] if text else type(exc).__name__})"
                          if "NotSupported" in type(exc).__name__ or "NotSupported" in text
                          else (text.splitlines()[0] if text else type(exc).__name__))
        return found
    active = results.get("activeManifest") or {}
    failures = [{"code": f.get("code", ""), "explanation": f.get("explanation", "")}
                for f in active.get("failure") or []]
    codes = [f["code"] for f in failures]
    info = manifest.get("signature_info") or {}
    actions = []
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in (assertion.get("data") or {}).get("actions") or []:
                agent = action.get("softwareAgent")
                if isinstance(agent, dict):
                    agent = " ".join(str(agent.get(k, "")) for k in ("name", "version")).strip()
                actions.append({"action": action.get("action"), "digital_source_type": action.get("digitalSourceType"),
                                "software_agent": agent, "description": action.get("description")})
    own = {a["label"]: a.get("data") for a in manifest.get("assertions") or []
           if str(a.get("label", "")).startswith("org.swapwizard.")}
    generator = manifest.get("claim_generator_info") or []
    generator_text = ", ".join(" ".join(str(g.get(k, "")) for k in ("name", "version")).strip()
                               for g in generator if isinstance(g, dict)) or manifest.get("claim_generator")
    serial = str(info.get("cert_serial_number") or "")
    content_bad = [c for c in codes if c in _CONTENT_CODES or c.endswith(".mismatch") and "Hash" in c]
    signature_bad = [c for c in codes if c.startswith("claimSignature.") or c in (
        "signingCredential.invalid", "signingCredential.revoked", "signingCredential.expired")
        or c.startswith("timeStamp.") and c.endswith("mismatch")]
    found.update({
        "signed": True, "state": state, "title": manifest.get("title"), "generator": generator_text,
        "signer": info.get("common_name"), "issuer": info.get("issuer"), "alg": info.get("alg"),
        "signed_at": info.get("time"), "serial": serial,
        "local_identity": bool(serial) and serial == _local_serial(),
        "signature_valid": not signature_bad, "content_intact": not content_bad,
        "trusted": state == "Trusted",
        "ai_generated": any(str(a.get("digital_source_type") or "").rsplit("/", 1)[-1] in AI_SOURCE_TYPES
                            for a in actions),
        "actions": actions, "assertions": own, "failures": failures,
    })
    return found


def verdict(found: dict[str, Any]) -> str:
    """One line: what a reader of ``read_credentials``' answer should know first."""
    if found.get("error"):
        return f"Content Credentials could not be read: {found['error']}."
    if not found.get("signed"):
        return "No Content Credentials: this file carries no C2PA manifest."
    parts = ["signed"]
    parts.append("content intact" if found["content_intact"] else "CONTENT CHANGED since it was signed")
    if not found["signature_valid"]:
        parts.append("SIGNATURE INVALID")
    parts.append("trusted signer" if found["trusted"] else "untrusted signer")
    if found.get("ai_generated"):
        parts.append("made with AI (" + ", ".join(sorted({str(a['digital_source_type']).rsplit('/', 1)[-1]
                                                          for a in found['actions'] if a['digital_source_type']}))
                     + ")")
    return "Content Credentials: " + ", ".join(parts) + "."


def summary_json(found: dict[str, Any]) -> str:
    return json.dumps(found, indent=2, sort_keys=True)
