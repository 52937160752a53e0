//! The card's file system: an arena of DFs and EFs, the lookups SELECT and its relatives need,
//! and the FCP each file describes itself with.

use super::apdu::tlv;

/// Who may read or update an EF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    Always,
    /// Only after the PIN ([`super::PIN_REF`]) was verified.
    Pin,
    Never,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Body {
    Df {
        name: Option<Vec<u8>>,
    },
    Transparent(Vec<u8>),
    /// A linear-fixed EF: records of `len` bytes, at most `capacity` of them.
    Records {
        len: usize,
        capacity: usize,
        records: Vec<Vec<u8>>,
    },
}

impl Body {
    /// Bytes of card memory the file takes.
    pub fn size(&self) -> usize {
        match self {
            Body::Df { .. } => 0,
            Body::Transparent(bytes) => bytes.len(),
            Body::Records { len, capacity, .. } => len * capacity,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Node {
    pub parent: Option<usize>,
    pub id: u16,
    pub sfi: Option<u8>,
    pub body: Body,
    pub active: bool,
    pub read: Access,
    pub update: Access,
}

impl Node {
    pub fn new(id: u16, sfi: Option<u8>, body: Body) -> Node {
        Node { parent: None, id, sfi, body, active: true, read: Access::Always, update: Access::Always }
    }

    pub fn is_df(&self) -> bool {
        matches!(self.body, Body::Df { .. })
    }

    /// The proprietary-free part of the FCP: `82`, `83`, `84`, `80`, `88`, `8A` as they apply.
    pub fn fcp_objects(&self) -> Vec<u8> {
        let mut out = match &self.body {
            Body::Df { .. } => tlv(0x82, &[0x38]),
            Body::Transparent(_) => tlv(0x82, &[0x01]),
            Body::Records { len, records, .. } => {
                let [hi, lo] = u16::try_from(*len).unwrap_or(u16::MAX).to_be_bytes();
                tlv(0x82, &[0x02, 0x21, hi, lo, u8::try_from(records.len()).unwrap_or(u8::MAX)])
            }
        };
        out.extend(tlv(0x83, &self.id.to_be_bytes()));
        if let Body::Df { name: Some(name) } = &self.body {
            out.extend(tlv(0x84, name));
        }
        if !self.is_df() {
            let size = (self.body.size() as u32).to_be_bytes();
            out.extend(tlv(0x80, &size[if self.body.size() > 0xFFFF { 1 } else { 2 }..]));
        }
        if let Some(sfi) = self.sfi {
            out.extend(tlv(0x88, &[sfi << 3]));
        }
        out.extend(tlv(0x8A, &[if self.active { 0x05 } else { 0x04 }]));
        out
    }
}

/// The MF is always entry 0; deleted files leave `None` behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Files {
    nodes: Vec<Option<Node>>,
}

pub(super) const MF_INDEX: usize = 0;

impl Files {
    pub fn new() -> Files {
        Files { nodes: vec![Some(Node::new(super::MF, None, Body::Df { name: None }))] }
    }

    /// Adds `node` under the DF `parent`; returns its index.
    pub fn add(&mut self, parent: usize, mut node: Node) -> usize {
        node.parent = Some(parent);
        self.nodes.push(Some(node));
        self.nodes.len() - 1
    }

    pub fn get(&self, index: usize) -> Option<&Node> {
        self.nodes.get(index).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Node> {
        self.nodes.get_mut(index).and_then(Option::as_mut)
    }

    pub fn node(&self, index: usize) -> &Node {
        self.get(index).expect("an index the card handed out for a file that still exists")
    }

    pub fn node_mut(&mut self, index: usize) -> &mut Node {
        self.get_mut(index).expect("an index the card handed out for a file that still exists")
    }

    pub fn children(&self, df: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.as_ref().is_some_and(|n| n.parent == Some(df)))
            .map(|(i, _)| i)
    }

    pub fn child(&self, df: usize, id: u16) -> Option<usize> {
        self.children(df).find(|&i| self.node(i).id == id)
    }

    pub fn child_by_sfi(&self, df: usize, sfi: u8) -> Option<usize> {
        self.children(df).find(|&i| self.node(i).sfi == Some(sfi))
    }

    pub fn by_name(&self, name: &[u8]) -> Option<usize> {
        (0..self.nodes.len()).find(
            |&i| matches!(self.get(i), Some(Node { body: Body::Df { name: Some(n) }, .. }) if n == name),
        )
    }

    /// Follows `path` (file identifiers) down from the DF `from`.
    pub fn walk(&self, from: usize, path: &[u16]) -> Option<usize> {
        path.iter().try_fold(from, |at, &id| self.node(at).is_df().then(|| self.child(at, id)).flatten())
    }

    /// True when `index` is `ancestor` or lies below it.
    pub fn within(&self, mut index: usize, ancestor: usize) -> bool {
        loop {
            if index == ancestor {
                return true;
            }
            match self.get(index).and_then(|n| n.parent) {
                Some(parent) => index = parent,
                None => return false,
            }
        }
    }

    /// Removes `index` and everything below it.
    pub fn delete(&mut self, index: usize) {
        let doomed: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.within(i, index)).collect();
        for i in doomed {
            self.nodes[i] = None;
        }
    }

    /// Card memory in use by every EF.
    pub fn used(&self) -> usize {
        self.nodes.iter().flatten().map(|n| n.body.size()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_within_delete() {
        let mut files = Files::new();
        let df = files.add(MF_INDEX, Node::new(0x5000, None, Body::Df { name: Some(vec![1, 2]) }));
        let ef = files.add(df, Node::new(0x5001, Some(1), Body::Transparent(vec![0; 10])));
        assert_eq!(files.walk(MF_INDEX, &[0x5000, 0x5001]), Some(ef));
        assert_eq!(files.walk(MF_INDEX, &[0x5000, 0x5001, 0x5001]), None, "an EF has no children");
        assert_eq!(files.by_name(&[1, 2]), Some(df));
        assert_eq!(files.child_by_sfi(df, 1), Some(ef));
        assert!(files.within(ef, MF_INDEX));
        assert_eq!(files.used(), 10);
        files.delete(df);
        assert_eq!(files.get(ef), None);
        assert_eq!(files.walk(MF_INDEX, &[0x5000]), None);
    }

    #[test]
    fn fcp_objects_describe_the_file() {
        let mut node =
            Node::new(0x5003, Some(3), Body::Records { len: 16, capacity: 8, records: vec![vec![0; 16]] });
        assert_eq!(
            node.fcp_objects(),
            [0x82, 5, 2, 0x21, 0, 16, 1, 0x83, 2, 0x50, 3, 0x80, 2, 0, 128, 0x88, 1, 3 << 3, 0x8A, 1, 5]
        );
        node.active = false;
        node.body = Body::Transparent(vec![0; 70_000]);
        assert_eq!(node.fcp_objects()[..8], [0x82, 1, 1, 0x83, 2, 0x50, 3, 0x80]);
        assert_eq!(node.fcp_objects()[8..12], [3, 0x01, 0x11, 0x70]);
        assert_eq!(node.fcp_objects().last(), Some(&0x04));
    }
}
