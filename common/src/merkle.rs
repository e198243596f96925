//! toycoin's own Merkle tree over transaction ids, and inclusion proofs.
//!
//! It is not a balanced tree: it grows by insertion exactly as the original
//! does (format doc, section 6), so roots match byte for byte. Labels are 65
//! bytes: a prefix byte (0 for a leaf, 1 for an inner node) then a SHA-512.

use std::fmt;

use sha2::{Digest, Sha512};

use crate::hash::{Txid, HASH_LEN};

/// Length of a Merkle label: one prefix byte and a SHA-512.
pub const LABEL_LEN: usize = HASH_LEN + 1;

/// A node's label: a leaf's is 0 then its transaction id, an inner node's
/// 1 then SHA-512 of its children's labels.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MerkleNode(pub [u8; LABEL_LEN]);

/// The root's label: what a block header's `merkle_root` holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MerkleRoot(pub MerkleNode);

impl MerkleRoot {
    /// Builds a root from a slice that must be exactly 65 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<MerkleRoot> {
        MerkleNode::from_slice(bytes).map(MerkleRoot)
    }

    pub fn as_bytes(&self) -> &[u8; LABEL_LEN] {
        self.0.as_bytes()
    }
}

impl AsRef<[u8]> for MerkleRoot {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl fmt::Debug for MerkleRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerkleRoot({})", hex::encode(&self.0 .0[..7]))
    }
}

impl MerkleNode {
    fn leaf(hash: &Txid) -> MerkleNode {
        let mut label = [0u8; LABEL_LEN];
        label[1..].copy_from_slice(hash.as_ref());
        MerkleNode(label)
    }

    fn inner(left: &MerkleNode, right: Option<&MerkleNode>) -> MerkleNode {
        let mut hasher = Sha512::new();
        hasher.update(left.0);
        if let Some(right) = right {
            hasher.update(right.0);
        }
        let mut label = [1u8; LABEL_LEN];
        label[1..].copy_from_slice(&hasher.finalize());
        MerkleNode(label)
    }

    /// Builds a label from a slice that must be exactly 65 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<MerkleNode> {
        bytes.try_into().ok().map(MerkleNode)
    }

    pub fn as_bytes(&self) -> &[u8; LABEL_LEN] {
        &self.0
    }
}

impl AsRef<[u8]> for MerkleNode {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MerkleNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerkleNode({})", hex::encode(&self.0[..7]))
    }
}

/// A node of the tree. Leaves have neither child; an inner node always has
/// a left child and may lack a right one.
#[derive(Clone, Debug)]
struct Node {
    label: MerkleNode,
    size: usize,
    leaves: usize,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

impl Node {
    fn leaf(hash: &Txid) -> Node {
        Node {
            label: MerkleNode::leaf(hash),
            size: 1,
            leaves: 1,
            left: None,
            right: None,
        }
    }

    /// An inner node whose only child is one leaf ("from_singleton"),
    /// not labelled yet ([`Node::relabel`]).
    fn singleton(hash: &Txid) -> Node {
        let mut node = Node {
            label: MerkleNode([0; LABEL_LEN]),
            size: 0,
            leaves: 0,
            left: Some(Box::new(Node::leaf(hash))),
            right: None,
        };
        node.count();
        node
    }

    /// Sizes and leaves from the children.
    fn count(&mut self) {
        let (size, leaves) = match (&self.left, &self.right) {
            (Some(l), Some(r)) => (l.size + r.size, l.leaves + r.leaves),
            (Some(l), None) => (l.size, l.leaves),
            (None, _) => return,
        };
        self.size = 1 + size;
        self.leaves = leaves;
    }

    /// Labels every inner node from its children's labels, bottom up. The
    /// original relabels the path to the root at each insertion (some
    /// n log n hashes); the labels that last are these (n hashes).
    fn relabel(&mut self) {
        let (Some(l), right) = (&mut self.left, &mut self.right) else {
            return;
        };
        l.relabel();
        if let Some(r) = right {
            r.relabel();
        }
        self.label = MerkleNode::inner(&l.label, right.as_ref().map(|r| &r.label));
    }

    /// Adds a leaf where the original's insertion puts it (the tree's
    /// shape follows the sizes alone); labels wait for [`Node::relabel`].
    fn insert(&mut self, hash: &Txid) {
        match (&mut self.left, &mut self.right) {
            (None, _) => self.left = Some(Box::new(Node::leaf(hash))),
            (Some(_), None) => self.right = Some(Box::new(Node::leaf(hash))),
            (Some(l), Some(r)) if l.size == r.size => {
                let old = Node {
                    label: self.label,
                    size: self.size,
                    leaves: self.leaves,
                    left: self.left.take(),
                    right: self.right.take(),
                };
                self.left = Some(Box::new(old));
                self.right = Some(Box::new(Node::singleton(hash)));
            }
            (Some(_), Some(r)) => r.insert(hash),
        }
        self.count();
    }
}

/// A Merkle tree built from one or more leaves.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    root: Node,
}

/// One step of an inclusion proof, from the leaf upwards: the sibling's
/// label (none when the node on the path is an only child) and whether the
/// node on the path is the right child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofStep {
    pub sibling: Option<MerkleNode>,
    pub path_is_right: bool,
}

/// Proof that a leaf is in a tree with a given root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleProof {
    pub steps: Vec<ProofStep>,
}

impl MerkleTree {
    /// Builds the tree over `leaves` in order; `None` when there are none
    /// (the original raises an error for a block without transactions).
    pub fn from_leaves(leaves: &[Txid]) -> Option<MerkleTree> {
        let (first, rest) = leaves.split_first()?;
        let mut root = Node::singleton(first);
        for leaf in rest {
            root.insert(leaf);
        }
        root.relabel();
        Some(MerkleTree { root })
    }

    pub fn root(&self) -> MerkleRoot {
        MerkleRoot(self.root.label)
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.root.leaves
    }

    pub fn is_empty(&self) -> bool {
        self.root.leaves == 0
    }

    /// An inclusion proof for the leaf at `index` (in insertion order).
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        if index >= self.len() {
            return None;
        }
        let mut steps = Vec::new();
        let mut node = &self.root;
        let mut index = index;
        while let Some(left) = &node.left {
            if index < left.leaves {
                steps.push(ProofStep {
                    sibling: node.right.as_ref().map(|r| r.label),
                    path_is_right: false,
                });
                node = left;
            } else {
                let right = node.right.as_ref()?;
                index -= left.leaves;
                steps.push(ProofStep {
                    sibling: Some(left.label),
                    path_is_right: true,
                });
                node = right;
            }
        }
        steps.reverse();
        Some(MerkleProof { steps })
    }
}

impl MerkleProof {
    /// True when this proof leads from `leaf` to `root`.
    pub fn verify(&self, leaf: &Txid, root: &MerkleRoot) -> bool {
        let mut label = MerkleNode::leaf(leaf);
        for step in &self.steps {
            label = match (&step.sibling, step.path_is_right) {
                (None, false) => MerkleNode::inner(&label, None),
                (None, true) => return false,
                (Some(s), false) => MerkleNode::inner(&label, Some(s)),
                (Some(s), true) => MerkleNode::inner(s, Some(&label)),
            };
        }
        label == root.0
    }
}

/// The Merkle root over the given transaction hashes.
pub fn merkle_root(leaves: &[Txid]) -> Option<MerkleRoot> {
    MerkleTree::from_leaves(leaves).map(|t| t.root())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::hash::Hash;

    fn leaves(n: usize) -> Vec<Txid> {
        (1..=n)
            .map(|i| Txid::from_raw_hash(Hash::of(format!("leaf-{i}").as_bytes())))
            .collect()
    }

    #[test]
    fn one_leaf_root_is_an_inner_node_over_the_leaf() {
        let l = leaves(1);
        let expected = MerkleRoot(MerkleNode::inner(&MerkleNode::leaf(&l[0]), None));
        assert_eq!(merkle_root(&l), Some(expected));
    }

    #[test]
    fn no_leaves_no_root() {
        assert!(merkle_root(&[]).is_none());
    }

    #[test]
    fn every_leaf_has_a_proof_that_verifies_and_only_for_itself() {
        for n in 1..=17 {
            let l = leaves(n);
            let tree = MerkleTree::from_leaves(&l).unwrap();
            assert_eq!(tree.len(), n);
            for (i, leaf) in l.iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                assert!(proof.verify(leaf, &tree.root()), "n={n} i={i}");
                let other = Txid::from_raw_hash(Hash::of(b"not a leaf"));
                assert!(!proof.verify(&other, &tree.root()));
            }
            assert!(tree.proof(n).is_none());
        }
    }

    #[test]
    fn a_proof_fails_against_another_root() {
        let tree = MerkleTree::from_leaves(&leaves(5)).unwrap();
        let other = merkle_root(&leaves(6)).unwrap();
        assert!(!tree.proof(2).unwrap().verify(&leaves(5)[2], &other));
    }
}
