"""The three datasets CP-VTON reads, each in the layout it unpacks to (no conversion copy).

  viton      VITON (Han et al. 2018) as CP-VTON's authors packed it: 256x192 files, LIP parses,
             OpenPose COCO-18 keypoints (the original data; read exactly as the original did)
  vitonhd    VITON-HD (Choi et al. 2021, the zalando-hd-resized zip): 1024x768, tops, CIHP
             parses (image-parse-v3), OpenPose BODY_25 keypoints in the photo's pixels
  dresscode  Dress Code (Morelli et al. 2022): 1024x768, one folder per category (upper_body,
             lower_body, dresses), ATR parses (label_maps), COCO-18 keypoints at 384x512

A layout says where a pair's files are and which parse labels are the head and the garment;
cp_dataset reads them. For VITON-HD and Dress Code the photo and garment images are resized to
fine_width x fine_height (bilinear), the parses with nearest neighbour, and the keypoints scaled
from the frame they are stored in (`pose_frame`) to that size. The person representation is
CP-VTON's for every dataset: body shape, head (the layout's head labels) and pose.

Label choices:
- VITON-HD's CIHP ids equal LIP's but for id 10, torso skin in CIHP (LIP: jumpsuit). CP-VTON's
  head {1, 2, 4, 13} and garment {5, 6, 7} sets leave 10 out, so torso skin is body, not garment.
- Dress Code's ATR ids: head = hat 1, hair 2, sunglasses 3, face 11 (the Dress Code loader's
  parse_head); the garment is upper clothes 4, dress 7, or for lower_body both skirt 5 and pants 6.
  The Dress Code loader takes only pants (6) as the lower-body garment, but its parser labels
  skirts either way (a pencil skirt of the released data is labelled pants), so a skirt's pixels
  are garment here whichever label they got: the GMM's target is then the whole garment.
"""
import os
import os.path as osp

DATASETS = ('viton', 'vitonhd', 'dresscode')
CATEGORIES = ('upper_body', 'lower_body', 'dresses')  # Dress Code's category folders
# Where each dataset is looked for when --dataroot is not given: the folder name it unpacks to.
DEFAULT_ROOTS = {'viton': 'data', 'vitonhd': 'data/zalando-hd-resized', 'dresscode': 'data/DressCode'}
TRAIN_LIST = 'train_pairs.txt'
GENERATED_MASKS = 'cloth-mask'  # where Dress Code cloth masks made by cp_dataset are cached


def stem(name):
    """'000001_0.jpg' -> '000001_0'."""
    return osp.splitext(name)[0]


def _first_folder(split_dir, names):
    """The first of `names` that is a folder in split_dir (the first name if none is)."""
    return next((name for name in names if osp.isdir(osp.join(split_dir, name))), names[0])


class Viton:
    """VITON: <root>/<pairs file>, <root>/<datamode>/{image,image-parse,pose,cloth,cloth-mask}/."""
    name = 'viton'
    head_labels = (1, 2, 4, 13)  # LIP hat, hair, sunglasses, face
    max_label = 19
    resize = False  # the files are at fine size already: another size is an error, as in the original
    pose_frame = None  # keypoints are in the pixels of the (fine-size) photo
    test_list, same_list = 'test_pairs.txt', 'test_pairs_same.txt'  # unpaired, and same-clothes pairs
    parse_folders, pose_folders = ('image-parse',), ('pose',)

    def cloth_labels(self, category=None):
        return (5, 6, 7)  # LIP upper clothes, dress, coat

    def split_dir(self, dataroot, datamode, category=None):
        """The folder holding a split's files (and where the GMM's warps go for the TOM)."""
        return osp.join(dataroot, datamode)

    def pairs_path(self, dataroot, data_list, category=None):
        return osp.join(dataroot, data_list)

    def pairs(self, listed, datamode):
        """The pairs a split trains or tests on, from the pairs file's [(person, cloth)]."""
        return listed

    def input_paths(self, split_dir, im_name, c_name):
        """{key: path} of a pair's input files: cloth, cloth_mask, image, parse, pose."""
        s = stem(im_name)
        return {'cloth': osp.join(split_dir, 'cloth', c_name),
                'cloth_mask': osp.join(split_dir, 'cloth-mask', c_name),
                'image': osp.join(split_dir, 'image', im_name),
                'parse': osp.join(split_dir, _first_folder(split_dir, self.parse_folders), s + '.png'),
                'pose': osp.join(split_dir, _first_folder(split_dir, self.pose_folders), s + '_keypoints.json')}

    def makes_cloth_masks(self, split_dir):
        """Whether cp_dataset makes the split's cloth masks (the dataset ships none)."""
        return False

    def same_clothes_pairs(self, split_dir):
        """[(person, her own garment)] of a split: '<id>_0.jpg' with '<id>_1.jpg'."""
        persons = sorted(n for n in os.listdir(osp.join(split_dir, 'image')) if n.endswith('_0.jpg'))
        pairs = [(person, person[:-len('0.jpg')] + '1.jpg') for person in persons]
        return [(p, c) for p, c in pairs if osp.isfile(self.input_paths(split_dir, p, c)['cloth'])]


class VitonHD(Viton):
    """VITON-HD: <root>/{train,test}_pairs.txt, <root>/<datamode>/{image,cloth,cloth-mask,
    image-parse-v3,openpose_json}/ (the older names image-parse/ and openpose-json/ of the VITON-HD
    code's test samples are read too). A person and her garment share a file name."""
    name = 'vitonhd'
    resize = True
    pose_frame = (768, 1024)  # BODY_25 keypoints in the pixels of the 768x1024 photo
    parse_folders, pose_folders = ('image-parse-v3', 'image-parse'), ('openpose_json', 'openpose-json')

    def pairs(self, listed, datamode):
        # train_pairs.txt pairs (almost) every person with another garment; training is paired,
        # as in the VITON-HD and HR-VITON loaders: each person with cloth/<her own file name>.
        return [(person, person) for person, _ in listed] if datamode == 'train' else listed

    def same_clothes_pairs(self, split_dir):
        persons = sorted(os.listdir(osp.join(split_dir, 'image')))
        return [(p, p) for p in persons if osp.isfile(osp.join(split_dir, 'cloth', p))]


class DressCode(Viton):
    """Dress Code: <root>/<category>/{images,label_maps,keypoints}/ and the category's pair files
    (train_pairs.txt, test_pairs_paired.txt, test_pairs_unpaired.txt); person NNNNNN_0.jpg, garment
    NNNNNN_1.jpg, parse NNNNNN_4.png, keypoints NNNNNN_2.json. Cloth masks: <category>/masks/
    NNNNNN_1.png (LaDI-VTON's) where that folder exists, else made from the garment image and
    cached in <category>/cloth-mask/. --datamode only names the results: the pair file picks the split."""
    name = 'dresscode'
    head_labels = (1, 2, 3, 11)  # ATR hat, hair, sunglasses, face
    max_label = 17
    resize = True
    pose_frame = (384, 512)  # the keypoint files' coordinates
    test_list, same_list = 'test_pairs_unpaired.txt', 'test_pairs_paired.txt'
    GARMENTS = {'upper_body': (4,), 'lower_body': (5, 6), 'dresses': (7,)}  # see the module docstring
    same_clothes_pairs = None  # the same-clothes list ships with the data: test_pairs_paired.txt

    def cloth_labels(self, category=None):
        return self.GARMENTS[category]

    def split_dir(self, dataroot, datamode, category=None):
        return osp.join(dataroot, category)

    def pairs_path(self, dataroot, data_list, category=None):
        return osp.join(dataroot, category, data_list)

    def input_paths(self, split_dir, im_name, c_name):
        person_id = stem(im_name).rsplit('_', 1)[0]
        return {'cloth': osp.join(split_dir, 'images', c_name),
                'cloth_mask': osp.join(split_dir, self.mask_folder(split_dir), stem(c_name) + '.png'),
                'image': osp.join(split_dir, 'images', im_name),
                'parse': osp.join(split_dir, 'label_maps', person_id + '_4.png'),
                'pose': osp.join(split_dir, 'keypoints', person_id + '_2.json')}

    @staticmethod
    def mask_folder(split_dir):
        """masks/ (shipped separately by LaDI-VTON) where present, else the generated cache."""
        return 'masks' if osp.isdir(osp.join(split_dir, 'masks')) else GENERATED_MASKS

    def makes_cloth_masks(self, split_dir):
        return self.mask_folder(split_dir) == GENERATED_MASKS



LAYOUTS = {layout.name: layout for layout in (Viton(), VitonHD(), DressCode())}


def default_list(dataset, datamode):
    """The pairs file a split reads when --data_list is not given."""
    return TRAIN_LIST if datamode == 'train' else LAYOUTS[dataset].test_list


def check_choice(dataset, category=None, variant='cpvton'):
    """A message for a dataset / category / variant combination that does not exist, else None."""
    if dataset not in LAYOUTS:
        return f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}"
    if dataset == 'dresscode' and category not in CATEGORIES:
        return f"Dress Code needs --category: one of {', '.join(CATEGORIES)} (got {category!r})"
    if variant != 'cpvton' and dataset != 'viton':
        return (f'--variant {variant} reads the CP-VTON+ parses and body masks, which exist for VITON '
                f'only: use --dataset viton, or --variant cpvton with --dataset {dataset}')
    return None


def run_name(dataset, variant='cpvton', category=None, size=(192, 256)):
    """The step scripts' name of a run (checkpoints/gmm_train_<run>/, result_<run>/): new (VITON),
    plus (CP-VTON+), vitonhd, dresscode_<category>; at a size (width, height) other than 192x256
    followed by _<H>x<W>."""
    if dataset == 'viton':
        return 'plus' if variant == 'cpvton+' else 'new'
    run = dataset if dataset == 'vitonhd' else f'{dataset}_{category}'
    return run if tuple(size) == (192, 256) else f'{run}_{size[1]}x{size[0]}'


def result_folder(prefix, run):
    """Where the step scripts put a run's results (prefix 'result') or strips ('result_simple'):
    <prefix> for CP-VTON on VITON, else <prefix>_<run>."""
    return prefix if run == 'new' else f'{prefix}_{run}'


def add_options(parser, dataroot=True):
    """--dataset and --category (and --dataroot, its default the dataset's), for every script that
    reads a dataset."""
    parser.add_argument('--dataset', default='viton', choices=DATASETS,
                        help='viton (default): VITON as CP-VTON reads it; vitonhd: VITON-HD (zalando-hd-resized) '
                             'read in place; dresscode: Dress Code read in place, one --category at a time. '
                             'VITON-HD and Dress Code images are resized to fine_width x fine_height')
    parser.add_argument('--category', choices=CATEGORIES,
                        help='with --dataset dresscode (required there): the category folder to read; '
                             'its garment is upper clothes, pants or skirt, or dress')
    if dataroot:
        parser.add_argument('--dataroot', help='dataset root folder (default: the dataset\'s: ' + ', '.join(
            f'{root} for {name}' for name, root in DEFAULT_ROOTS.items()) + ')')


def fill_defaults(opt, error):
    """Give --dataroot and --data_list left out (None) the dataset's defaults; report an impossible
    dataset / category / variant combination with error(message) (parser.error)."""
    wrong = check_choice(opt.dataset, opt.category, getattr(opt, 'variant', 'cpvton'))
    if wrong:
        error(wrong)
    if opt.dataroot is None:
        opt.dataroot = DEFAULT_ROOTS[opt.dataset]
    if getattr(opt, 'data_list', '') is None:
        opt.data_list = default_list(opt.dataset, opt.datamode)
    return opt
