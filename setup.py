"""Packaging for affine_nb. Every setting lives in settings.ini; this file only reads it."""
import shlex
from configparser import ConfigParser

import setuptools

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

required = ('lib_name lib_path version description keywords author author_email license status min_python audience '
            'language').split()
missing = [key for key in required if key not in cfg]
assert not missing, f'settings.ini lacks: {", ".join(missing)}'

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License'),
            'mit': ('MIT License', 'OSI Approved :: MIT License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature',
            '7 - Inactive']
export_requirements = shlex.split(cfg.get('export_requirements', ''))
license_name, license_classifier = licenses.get(cfg['license'].lower(), (cfg['license'], None))

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    keywords=cfg['keywords'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    license=license_name,
    url=cfg.get('git_url', ''),
    classifiers=[f"Development Status :: {statuses[int(cfg['status']) - 1]}",
                 f"Intended Audience :: {cfg['audience'].title()}",
                 f"Natural Language :: {cfg['language'].title()}",
                 f"Programming Language :: Python :: {cfg['min_python']}"]
                + ([f'License :: {license_classifier}'] if license_classifier else []),
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    include_package_data=True,
    install_requires=shlex.split(cfg.get('requirements', '')),
    # export: what affine-export --onnx needs; dev: everything the tests and the chapters use, export included
    extras_require={'dev': shlex.split(cfg.get('dev_requirements', '')) + export_requirements,
                    'export': export_requirements},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
