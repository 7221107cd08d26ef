"""XML parsing for untrusted files (scoring XML, xlsx parts): defusedxml, one policy everywhere.

Entity declarations (expansion bombs) and external references (local-file reads) are refused in
any encoding; a byte search for ``<!ENTITY`` would miss a UTF-16 file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml
import defusedxml.ElementTree as DET

__all__ = ["ParseError", "fromstring"]

ParseError = ET.ParseError


def fromstring(data: bytes, where: str) -> ET.Element:
    """Root element of the XML document ``data``.

    Parameters
    ----------
    data : bytes
        The whole document, any encoding its declaration names.
    where : str
        Named in the error message (the file).

    Raises
    ------
    ValueError
        ``"{where}: XML entity declarations are not accepted"`` for entity declarations or
        external references.
    ParseError
        For malformed XML (:class:`xml.etree.ElementTree.ParseError`, unchanged).

    Examples
    --------
    >>> fromstring(b"<a><b>1</b></a>", "x.xml")[0].text
    '1'
    >>> fromstring(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "x.xml")
    Traceback (most recent call last):
    ...
    ValueError: x.xml: XML entity declarations are not accepted
    """
    try:
        return DET.fromstring(data)
    except defusedxml.DefusedXmlException:
        raise ValueError(f"{where}: XML entity declarations are not accepted") from None
